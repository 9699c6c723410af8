"""BAM out of this process through a compressing child; what pipes to children share.

The child compresses (libdeflate) while this process works on FASTQ; the pipe between them keeps
the memory bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import sys
from pathlib import Path

PIPE_BUFFER = 1 << 20
COMPRESSOR = Path(__file__).with_name("bgzf.py")


def _widen(pipe) -> None:
    """Grow a pipe from 64 KiB to PIPE_BUFFER: 16 times fewer wake-ups of the processes on it."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BUFFER)


def last_error_line(errors: bytes) -> str:
    lines = [line for line in errors.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class BamWriter:
    """Compresses an uncompressed BAM stream into a BGZF file with `threads` threads at `level`.

    A child process cuts the stream into BGZF blocks and compresses them with libdeflate. It
    runs bgzf.py by its path: imported as part of this package it would start more slowly, which
    counts on small inputs.
    """

    def __init__(self, path: Path, threads: int, level: int):
        self.path = path
        compressor_args = [str(level), str(max(threads, 1)), path.absolute()]
        self._compressor = subprocess.Popen(
            [sys.executable, COMPRESSOR, *compressor_args],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,  # a line or a traceback: far less than the pipe holds
            bufsize=PIPE_BUFFER,
        )
        _widen(self._compressor.stdin)
        self._problem: str | None = None

    def write(self, data: bytes) -> None:
        try:
            self._compressor.stdin.write(data)
        except BrokenPipeError:
            raise OSError(f"writing {self.path} failed: {self._reap()}") from None

    def close(self) -> None:
        """Wait for the BAM to be complete; raises OSError if the compressor failed."""
        with contextlib.suppress(BrokenPipeError):
            self._compressor.stdin.close()
        if problem := self._reap():
            raise OSError(f"writing {self.path} failed: {problem}")

    def abort(self) -> None:
        self._compressor.kill()
        with contextlib.suppress(BrokenPipeError):
            self._compressor.stdin.close()
        self._reap()

    def _reap(self) -> str:
        """Wait for the compressor; its error message, or "" when it succeeded."""
        if self._problem is None:
            failed = self._compressor.wait() != 0
            errors = self._compressor.stderr.read()
            self._compressor.stderr.close()
            self._problem = last_error_line(errors) if failed else ""
        return self._problem
