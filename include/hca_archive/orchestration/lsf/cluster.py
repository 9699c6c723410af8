"""SSH to an LSF cluster from an Airflow connection: commands, SFTP staging, host keys checked.

Sync (paramiko, through the SSH provider's ``SSHHook``) for the operator, async (asyncssh, through
``SSHHookAsync``) for the trigger. Host keys come from the connection's ``host_key`` extra or the
system's ``known_hosts``; an unknown or changed key fails the connection.
"""

from __future__ import annotations

import posixpath
import shlex
import stat
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import asyncssh
import paramiko
from airflow.providers.ssh.hooks.ssh import SSHHook, SSHHookAsync
from paramiko.sftp import CMD_OPEN, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL, SFTP_FLAG_WRITE
from paramiko.sftp_attr import SFTPAttributes
from paramiko.sftp_file import SFTPFile

COMMAND_TIMEOUT = 120.0
CONNECT_ATTEMPTS = 3


class ClusterError(RuntimeError):
    """The cluster could not be reached or refused us; the message says which and why."""


class ClusterTimeout(ClusterError):
    """A command on the cluster gave no answer in time (LSF clients wait while LSF is down)."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class Cluster:
    """One SSH connection (and its SFTP channel) to the cluster behind ``ssh_conn_id``."""

    def __init__(self, ssh_conn_id: str) -> None:
        self.ssh_conn_id = ssh_conn_id
        self.hook = SSHHook(ssh_conn_id=ssh_conn_id, conn_retry_attempts=1)
        if self.hook.no_host_key_check or self.hook.allow_host_key_change:
            raise ClusterError(
                f"connection {ssh_conn_id} turns host key checking off; the LSF runner needs a "
                "verified host key (set the host_key extra or use known_hosts)"
            )
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self.hook.get_connection(self.ssh_conn_id).extra_dejson)

    def __enter__(self) -> Cluster:
        self._client = _connect(self.hook, self.ssh_conn_id)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self._connected().open_sftp()
        return self._sftp

    def run(self, argv: list[str], timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        """Run ``argv`` (every word shell-quoted) and collect its output."""
        _, stdout, stderr = self._connected().exec_command(shlex.join(argv), timeout=timeout)
        try:
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
        except TimeoutError:  # paramiko's bare socket.timeout says neither what nor where
            stdout.channel.close()
            raise ClusterTimeout(
                f"{argv[0]} on {self.hook.remote_host}:{self.hook.port} (connection "
                f"{self.ssh_conn_id}) gave no answer within {timeout:g} s; LSF may be down or "
                "busy (a bsub may still have submitted the job: a retry finds it by name)"
            ) from None
        return CommandResult(stdout.channel.recv_exit_status(), out, err)

    def make_private_dirs(self, path: str) -> None:
        """``mkdir -p`` where every directory it creates is mode 0700.

        Every directory that already exists on the way must be ours or root's, and writable by
        no one else unless sticky (like ``/tmp``): whoever may write in one can rename what we
        create below it and put their own directory there, with a plan of their choosing that
        the job would run with our credentials.
        """
        me = self._user_id()
        missing = []
        current = posixpath.normpath(path)
        while current not in ("/", "") and not self._exists(current):
            missing.append(current)
            current = posixpath.dirname(current)
        self._check_not_shared(current or "/", me)
        for directory in reversed(missing):
            try:
                self.sftp.mkdir(directory, mode=0o700)
            except OSError:  # made meanwhile (another worker staging the same job)?
                if not self._exists(directory):
                    raise
                self._check_not_shared(directory, me)

    def write_private(self, path: str, data: bytes) -> None:
        """Create ``path`` afresh with mode 0600 in the SFTP OPEN request itself, then write it:
        the content is never readable by others, not even between create and chmod."""
        self.remove(path)
        attributes = SFTPAttributes()
        attributes.st_mode = 0o600
        flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL
        # paramiko's public open() sends no attributes, so the server would use 0666 & umask.
        _, message = self.sftp._request(CMD_OPEN, path, flags, attributes)
        with SFTPFile(self.sftp, message.get_binary(), "wb") as handle:
            handle.write(data)

    def read(self, path: str) -> bytes | None:
        try:
            with self.sftp.open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def tail(self, path: str, max_bytes: int) -> str | None:
        """The last ``max_bytes`` of a file, or None when it does not exist."""
        try:
            with self.sftp.open(path, "rb") as handle:
                size = handle.stat().st_size or 0
                handle.seek(max(0, size - max_bytes))
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def remove(self, path: str) -> None:
        with suppress(FileNotFoundError):
            self.sftp.remove(path)

    def mode(self, path: str) -> int | None:
        try:
            return stat.S_IMODE(self.sftp.stat(path).st_mode or 0)
        except FileNotFoundError:
            return None

    def _user_id(self) -> int:
        answer = self.run(["id", "-u"]).stdout.split()
        if not answer or not answer[-1].isdigit():
            raise ClusterError(f"cannot tell our user id on the cluster: 'id -u' said {answer!r}")
        return int(answer[-1])

    def _check_not_shared(self, path: str, me: int) -> None:
        """``path`` and its ancestors: owned by us or root, writable by others only if sticky."""
        while True:
            info = self.sftp.stat(path)
            mode = info.st_mode or 0
            if info.st_uid not in (me, 0):
                raise ClusterError(f"{path} on the cluster belongs to user {info.st_uid}, not us")
            if mode & 0o022 and not mode & stat.S_ISVTX:
                raise ClusterError(
                    f"{path} on the cluster is writable by others (mode "
                    f"{stat.S_IMODE(mode):04o}); refusing to stage a job beneath it"
                )
            if path == "/":
                return
            path = posixpath.dirname(path)

    def _exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def _connected(self) -> paramiko.SSHClient:
        if self._client is None:
            raise ClusterError("use Cluster as a context manager to connect")
        return self._client


def _connect(hook: SSHHook, ssh_conn_id: str) -> paramiko.SSHClient:
    """Connect, retrying transient failures but never a host key problem."""
    where = f"{hook.remote_host}:{hook.port} (connection {ssh_conn_id})"
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return hook.get_conn()
        except paramiko.BadHostKeyException as error:
            raise ClusterError(
                f"SSH host key of {where} has CHANGED: got {error.key.get_name()} "
                f"{error.key.fingerprint}, expected {error.expected_key.fingerprint}; "
                "if the cluster's key really changed, update the connection's host_key extra"
            ) from None
        except paramiko.AuthenticationException as error:
            raise ClusterError(f"SSH login to {where} refused: {error}") from None
        except (OSError, paramiko.SSHException) as error:
            if "not found in known_hosts" in str(error):
                raise ClusterError(
                    f"SSH host key of {where} is unknown: add it to known_hosts or set the "
                    "connection's host_key extra"
                ) from None
            if attempt == CONNECT_ATTEMPTS:
                raise ClusterError(f"cannot connect to {where}: {error}") from error
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


async def connect_async(ssh_conn_id: str) -> asyncssh.SSHClientConnection:
    """An asyncssh connection for the triggerer; host key checked as for :class:`Cluster`."""
    try:
        return await SSHHookAsync(ssh_conn_id=ssh_conn_id).get_conn()
    except asyncssh.HostKeyNotVerifiable as error:
        raise ClusterError(
            f"SSH host key of connection {ssh_conn_id} is not trusted (changed or unknown): "
            f"{error}; check the connection's host_key extra"
        ) from None


async def run_async(
    connection: asyncssh.SSHClientConnection, argv: list[str], timeout: float = COMMAND_TIMEOUT
) -> CommandResult:
    result = await connection.run(shlex.join(argv), check=False, timeout=timeout)
    # None: the session closed without an exit status (dropped mid-command), like paramiko's -1
    status = -1 if result.exit_status is None else result.exit_status
    return CommandResult(status, _text(result.stdout), _text(result.stderr))


def _text(output: Any) -> str:
    if output is None:
        return ""
    return output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
