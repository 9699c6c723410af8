"""Serve the LSF stand-in over a real sshd, for the compose ``hpc`` service.

    python -m hca_archive.sandbox.hpc.serve --root /hpc [--port 2222]

Generates host and client ed25519 keys once, puts ``bsub``/``bjobs``/``bkill`` on the login
PATH, writes ``ROOT/ssh-connection.json`` (the Airflow SSH connection, host key pinned) and
replaces itself with ``sshd -D``. Listens on loopback: the services that use it share its
network namespace, as in docker-compose.yaml.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

from hca_archive.localnet import LOOPBACK
from hca_archive.sandbox.lsf.wrappers import write_wrappers

SSHD = "/usr/sbin/sshd"


def keypair(path: Path) -> str:
    """``path`` (private) and ``path.pub``, made once; returns "<algorithm> <key>"."""
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hpc", "-f", str(path)],
            check=True,
        )
    algorithm, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{algorithm} {key}"


def sshd_config(root: Path, port: int, bin_dir: Path) -> Path:
    login_path = os.pathsep.join(
        [str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]
    )
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {LOOPBACK}\n"
        f"HostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nLogLevel VERBOSE\n"
        "MaxStartups 100:30:200\nMaxSessions 100\nSubsystem sftp internal-sftp\n"
        f"SetEnv PATH={login_path}\n"
    )
    return config


def prepare(root: Path, port: int, login: str) -> Path:
    """Keys, wrappers, work root and the connection file; returns the sshd config."""
    root.mkdir(parents=True, exist_ok=True)
    host_key = keypair(root / "host_key")
    keypair(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    bin_dir = root / "bin"
    write_wrappers(bin_dir, root / "lsf-state")
    (root / "work").mkdir(exist_ok=True)
    connection = {
        "conn_type": "ssh",
        "host": LOOPBACK,
        "port": port,
        "login": login,
        "extra": {
            "key_file": str(root / "client_key"),
            "host_key": host_key,
            "look_for_keys": "false",
            "lsf_work_root": str(root / "work"),
        },
    }
    (root / "ssh-connection.json").write_text(json.dumps(connection))
    if os.geteuid() == 0:  # privilege separation; an unprivileged sshd logs in only its user
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    return sshd_config(root, port, bin_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hpc-serve", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=2222)
    parser.add_argument("--login", default=getpass.getuser(), help="default: this user")
    args = parser.parse_args(argv)
    config = prepare(args.root, args.port, args.login)
    os.execv(SSHD, [SSHD, "-D", "-e", "-f", str(config)])  # noqa: S606 - fixed argv, no shell


if __name__ == "__main__":
    main(sys.argv[1:])
