"""`hca-archive to-fastq`: rebuild the original FASTQ files from a BAM made by `convert`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hca_archive.convert.rebuild import rebuild_fastqs

EXIT_WITHOUT_TEARDOWN = True  # see hca_archive.cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bam", type=Path, help="BAM written by `hca-archive convert`")
    parser.add_argument("--outdir", required=True, type=Path, help="directory for the FASTQ files")


def run(args: argparse.Namespace) -> int:
    try:
        written = rebuild_fastqs(args.bam, args.outdir)
    except (OSError, ValueError) as error:
        print(f"hca-archive to-fastq: {args.bam}: {error}", file=sys.stderr)
        return 1
    for path in written.values():
        print(path)
    return 0
