"""BAM out of this process, and SAM text back in, through child processes.

The children compress (libdeflate) or decode (pysam's bundled samtools) while this process works
on FASTQ; the pipes between them keep the memory bounded. The samtools binary is never used.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# pysam.samtools.view raises on failure; its captured stderr then ends up in the traceback.
# Paths are passed absolute so that none can be taken for an option.
_VIEW = "import sys, pysam; pysam.samtools.view(*sys.argv[1:], catch_stdout=False)"
PIPE_BUFFER = 1 << 20
COMPRESSOR = Path(__file__).with_name("bgzf.py")


def _view(args: list[str], **popen) -> tuple[subprocess.Popen, tempfile.TemporaryFile]:
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child, closed by callers
    child = subprocess.Popen([sys.executable, "-c", _VIEW, *args], stderr=errors, **popen)
    return child, errors


def _widen(pipe) -> None:
    """Grow a pipe from 64 KiB to PIPE_BUFFER: 16 times fewer wake-ups of the processes on it."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BUFFER)


def _last_error_line(errors) -> str:
    errors.seek(0)
    lines = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class BamWriter:
    """Compresses an uncompressed BAM stream into a BGZF file with `threads` threads at `level`.

    A child process cuts the stream into BGZF blocks and compresses them with libdeflate. It
    runs bgzf.py by its path: imported as part of this package it would start more slowly, which
    counts on small inputs.
    """

    def __init__(self, path: Path, threads: int, level: int):
        self.path = path
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _reap
        compressor_args = [str(level), str(max(threads, 1)), path.absolute()]
        self._compressor = subprocess.Popen(
            [sys.executable, COMPRESSOR, *compressor_args],
            stdin=subprocess.PIPE,
            stderr=self._errors,
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
            self._problem = _last_error_line(self._errors) if failed else ""
            self._errors.close()
        return self._problem


def sam_lines(bam: Path, threads: int = 2) -> Iterator[list[bytes]]:
    """The records of a BAM as blocks of SAM text lines (no header)."""
    child, errors = _view(
        ["-@", str(max(threads, 1)), os.path.abspath(bam)], stdout=subprocess.PIPE
    )
    try:
        rest = b""
        while chunk := child.stdout.read(PIPE_BUFFER):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield lines
        if child.wait() != 0:
            raise OSError(f"reading {bam} failed: {_last_error_line(errors)}")
        if rest:
            raise OSError(f"reading {bam} failed: output ends inside a record")
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        errors.close()
