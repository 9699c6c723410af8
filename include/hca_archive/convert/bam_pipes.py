"""BAM out of this process through a compressing child; what pipes to children share.

The child compresses (libdeflate) while this process works on FASTQ; the pipe between them keeps
the memory bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from pathlib import Path
from typing import NoReturn

from hca_archive.convert import bgzf

PIPE_BUFFER = 1 << 20


def _widen(pipe) -> None:
    """Grow a pipe from 64 KiB to PIPE_BUFFER: 16 times fewer wake-ups of the processes on it."""
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

    def __init__(self, path: Path, threads: int, level: int):
        self.path = path
        source, sink = os.pipe()
        errors, error_sink = os.pipe()
        pid = os.fork()
        if pid == 0:
            _be_the_compressor(source, error_sink, path, threads, level)
        os.close(source)
        os.close(error_sink)
        self._pid = pid
        self._sink = open(sink, "wb", buffering=PIPE_BUFFER)  # noqa: SIM115 - closed by close()
        _widen(self._sink)
        self._errors = errors
        self._problem: str | None = None

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
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        with contextlib.suppress(BrokenPipeError):
            self._sink.close()
        self._reap()

    def _reap(self) -> str:
        """Wait for the compressor; its error message, or "" when it succeeded."""
        if self._problem is None:
            _, status = os.waitpid(self._pid, 0)
            with open(self._errors, "rb") as errors:
                message = errors.read()
            self._problem = last_error_line(message) if status else ""
        return self._problem


def _be_the_compressor(
    source: int, error_sink: int, path: Path, threads: int, level: int
) -> NoReturn:
    """The forked child's whole life: never returns, never runs the parent's cleanup."""
    status = 1
    try:
        _keep_only(source, error_sink)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handlers
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.nice(bgzf.NICENESS)
        with open(source, "rb") as stream, open(path, "wb") as target:
            bgzf.compress(stream, target, level, max(threads, 1))
        status = 0
    except BaseException as error:
        with contextlib.suppress(BaseException):
            os.write(error_sink, f"bgzf: {error}".encode(errors="replace"))
    finally:
        os._exit(status)


def _keep_only(*descriptors: int) -> None:
    """Close every inherited descriptor but stdio and `descriptors`: another writer's pipe held
    open here would never see its end, and a held lock file would outlive the parent."""
    start = 3
    for kept in sorted(descriptors):
        os.closerange(start, kept)
        start = kept + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))
