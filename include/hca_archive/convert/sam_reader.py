"""SAM text back out of a BAM, through pysam's bundled samtools in a child process.

The samtools binary is never used: the job image has pysam, not samtools.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hca_archive.convert.bam_pipes import PIPE_BUFFER, last_error_line

# pysam.samtools.view raises on failure; its captured stderr then ends up in the traceback.
# Paths are passed absolute so that none can be taken for an option.
_VIEW = "import sys, pysam; pysam.samtools.view(*sys.argv[1:], catch_stdout=False)"


def _view(args: list[str], **popen) -> tuple[subprocess.Popen, tempfile.TemporaryFile]:
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the child, closed by callers
    child = subprocess.Popen([sys.executable, "-c", _VIEW, *args], stderr=errors, **popen)
    return child, errors


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
            errors.seek(0)
            raise OSError(f"reading {bam} failed: {last_error_line(errors.read())}")
        if rest:
            raise OSError(f"reading {bam} failed: output ends inside a record")
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        errors.close()
