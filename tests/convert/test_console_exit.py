"""The console script leaves convert and to-fastq with os._exit, under the interpreter's exit
status rules."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest

from tests.convert.fastq_text import make_triplet


def _console(argv: list[str], closed: str) -> subprocess.CompletedProcess:
    """Run `python -m hca_archive.cli ARGV` with stdout or stderr closed (`>&-`, `2>&-`), as
    a daemon or a cron job may start it; Python then has sys.stdout / sys.stderr None."""
    redirect = {"stdout": ">&-", "stderr": "2>&-"}[closed]
    script = f'exec "$@" {redirect}'
    command = ["bash", "-c", script, "_", sys.executable, "-m", "hca_archive.cli", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_convert_and_to_fastq_succeed_with_a_closed_standard_stream(tmp_path, closed):
    """print() to a None stream does nothing, and so must the flush before os._exit: a flush of
    None failed with AttributeError, exit status 1, after the BAM and FASTQ files were written."""
    paths = make_triplet(5).write(tmp_path / "in")
    bam, back = tmp_path / "run.bam", tmp_path / "back"
    argv = ["convert", "--schema", "10xV3", "--r1", str(paths["read1"]), "--r2"]
    argv += [str(paths["read2"]), "--i1", str(paths["index1"]), "-o", str(bam)]
    converted = _console(argv, closed)
    assert bam.stat().st_size > 0
    assert converted.returncode == 0, converted.stderr
    rebuilt = _console(["to-fastq", str(bam), "--outdir", str(back)], closed)
    for path in paths.values():
        assert gzip.decompress((back / path.name).read_bytes()) == gzip.decompress(
            path.read_bytes()
        )
    assert rebuilt.returncode == 0, rebuilt.stderr
