"""SAM text in and out of BAM through pysam's bundled samtools, in a child process.

The child does the BGZF (de)compression in htslib's C threads while this process parses FASTQ;
a pipe between them keeps the memory bounded. The samtools binary is never used.
"""

from __future__ import annotations

import contextlib
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


def _view(args: list[str], **popen) -> tuple[subprocess.Popen, tempfile.TemporaryFile]:
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child, closed by callers
    child = subprocess.Popen([sys.executable, "-c", _VIEW, *args], stderr=errors, **popen)
    return child, errors


def _last_error_line(errors) -> str:
    errors.seek(0)
    lines = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


class BamWriter:
    """Compresses SAM text into a BAM file with `threads` threads at zlib `level`."""

    def __init__(self, path: Path, threads: int, level: int):
        self.path = path
        args = [
            "--no-PG",
            "-@",
            str(max(threads, 1)),
            "-O",
            f"bam,level={level}",
            "-o",
            os.path.abspath(path),
        ]
        self._child, self._errors = _view([*args, "-"], stdin=subprocess.PIPE, bufsize=PIPE_BUFFER)

    def write(self, sam_text: bytes) -> None:
        try:
            self._child.stdin.write(sam_text)
        except BrokenPipeError:
            self._child.wait()
            raise OSError(f"writing {self.path} failed: {_last_error_line(self._errors)}") from None

    def close(self) -> None:
        """Wait for the BAM to be complete; raises OSError if the child failed."""
        with contextlib.suppress(BrokenPipeError):
            self._child.stdin.close()
        if self._child.wait() != 0:
            raise OSError(f"writing {self.path} failed: {_last_error_line(self._errors)}")
        self._errors.close()

    def abort(self) -> None:
        self._child.kill()
        with contextlib.suppress(BrokenPipeError):
            self._child.stdin.close()
        self._child.wait()
        self._errors.close()


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
