"""BAM out of this process through a compressing child; what pipes to children share.

The child compresses (libdeflate) while this process works on FASTQ; the pipe between them keeps
the memory bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal

from hca_archive.convert import bgzf

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (see convert/__init__)
if TYPE_CHECKING:
    from typing import NoReturn

PIPE_BUFFER = 512 << 10
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
MESSAGE_LIMIT = 4096


def _widen(pipe) -> None:
    """Grow a pipe from 64 KiB to PIPE_BUFFER: 8 times fewer wake-ups of the processes on it."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BUFFER)


def last_error_line(errors: bytes) -> str:
    lines = [line for line in errors.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class BamWriter:
    """Compresses an uncompressed BAM stream into a BGZF file with `threads` threads at `level`.

    A forked child cuts the stream into BGZF blocks and compresses them with libdeflate, in
    processes of its own so that its threads do not share this process's GIL. Forked, not
    started: it begins with the modules loaded, where a new interpreter spends ~30 ms of CPU
    starting, which counts on small inputs. Create it before starting threads, so that the child
    inherits no lock that another thread held.
    """

    def __init__(self, path: str, threads: int, level: int):
        bgzf.libdeflate_level(level)  # a bad level fails here, not in the child
        self.path = path
        self._problem: str | None = None  # None until the child is reaped
        source, sink = os.pipe()
        errors, error_sink = os.pipe()
        # A stop signal between the fork and the child's own handlers would run this process's
        # handlers in the child, and the child on through the parent's code: held back until
        # each side is ready for it.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for descriptor in (source, sink, errors, error_sink):
                os.close(descriptor)
            raise
        if pid == 0:
            _be_the_compressor(source, error_sink, path, threads, level, mask)
        os.close(source)
        os.close(error_sink)
        self._pid = pid
        self._errors = errors
        self._sink = open(sink, "wb", buffering=PIPE_BUFFER)  # noqa: SIM115 - closed by close()
        _widen(self._sink)
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a stop held back arrives here
        except BaseException:
            self.abort()
            raise

    def write(self, data: bytes) -> None:
        try:
            self._sink.write(data)
        except BrokenPipeError:
            raise OSError(f"writing {self.path} failed: {self._reap()}") from None

    def close(self) -> None:
        """Wait for the BAM to be complete; raises OSError if the compressor failed."""
        with contextlib.suppress(BrokenPipeError):
            self._sink.close()
        if problem := self._reap():
            raise OSError(f"writing {self.path} failed: {problem}")

    def abort(self) -> None:
        if self._problem is None:  # once reaped, its pid may be another process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        with contextlib.suppress(BrokenPipeError):
            self._sink.close()
        self._reap()

    def _reap(self) -> str:
        """Wait for the compressor; its error message, or "" when it succeeded."""
        if self._problem is None:
            try:
                status = os.waitstatus_to_exitcode(os.waitpid(self._pid, 0)[1])
            except ChildProcessError:  # reaped by a call a signal cut short
                status = -signal.SIGKILL
            with open(self._errors, "rb") as errors:
                message = errors.read()
            if status < 0 and not message:
                message = f"killed by {signal.Signals(-status).name}".encode()
            self._problem = last_error_line(message) if status else ""
        return self._problem


def _be_the_compressor(
    source: int, error_sink: int, path: str, threads: int, level: int, mask: set[int]
) -> NoReturn:
    """The forked child's whole life: never returns, never runs the parent's cleanup."""
    status = 1
    try:
        _keep_only(source, error_sink)
        for stop in STOP_SIGNALS:
            signal.signal(stop, signal.SIG_DFL)  # not the parent's handlers
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.nice(bgzf.NICENESS)
        with open(source, "rb") as stream, open(path, "wb") as target:
            bgzf.compress(stream, target, level, max(threads, 1))
        status = 0
    except BaseException as error:
        with contextlib.suppress(BaseException):
            message = f"bgzf: {error}"[:MESSAGE_LIMIT]  # less than the pipe holds
            os.write(error_sink, message.encode(errors="replace"))
    finally:
        os._exit(status)


def _keep_only(*descriptors: int) -> None:
    """Close every inherited descriptor but stdio and `descriptors`: another writer's pipe held
    open here would never see its end, and a held lock file would outlive the parent."""
    keep = {0, 1, 2, *descriptors}
    try:
        inherited = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every number (slow where the limit is high)
        inherited = list(range(os.sysconf("SC_OPEN_MAX")))
    for descriptor in inherited:
        if descriptor not in keep:
            with contextlib.suppress(OSError):  # listdir's own, already closed
                os.close(descriptor)
