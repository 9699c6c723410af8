"""Where the real La Manno 10xV2 reads are (La Manno et al., BSD-2): kept out of the repository,
used by the sandbox's lamanno jobs, the demo, tests and benchmarks. Imports nothing heavy."""

from __future__ import annotations

import os
from pathlib import Path

LAMANNO_DEFAULT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "10xv2-lamanno"
LAMANNO_ENV = "HCA_ARCHIVE_LAMANNO_DIR"


def default_lamanno_dir() -> Path:
    """The folder of the real La Manno reads (R1/R2.fastq.gz, kept out of the repository):
    $HCA_ARCHIVE_LAMANNO_DIR, else ``../shared/data/10xv2-lamanno`` beside the repository."""
    return Path(os.environ.get(LAMANNO_ENV) or LAMANNO_DEFAULT)


def lamanno_reads_present(folder: Path) -> bool:
    return all((folder / f"{read}.fastq.gz").is_file() for read in ("R1", "R2"))
