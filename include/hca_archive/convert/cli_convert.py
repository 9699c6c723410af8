"""`hca-archive convert`: 10x FASTQ files -> one lossless unaligned BAM."""

from __future__ import annotations

import argparse
import sys

from hca_archive.convert.converter import DEFAULT_LEVEL, convert_fastqs
from hca_archive.convert.errors import ConversionError
from hca_archive.convert.schema import SCHEMAS

EXIT_WITHOUT_TEARDOWN = True  # see hca_archive.cli


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema", required=True, choices=sorted(SCHEMAS), help="10x read layout")
    parser.add_argument("--r1", required=True, help="R1 FASTQ (cell barcode + UMI)")
    parser.add_argument("--r2", required=True, help="R2 FASTQ (cDNA)")
    parser.add_argument("--i1", help="I1 FASTQ (sample index), if there is one")
    parser.add_argument("-o", "--output", required=True, help="BAM file to write")
    parser.add_argument("--threads", type=int, default=1, help="BAM compression threads")
    parser.add_argument(
        "--level",
        type=int,
        default=DEFAULT_LEVEL,
        choices=range(10),
        metavar="0-9",
        help=f"BAM compression level, as samtools' [{DEFAULT_LEVEL}]",
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = convert_fastqs(
            args.schema, args.r1, args.r2, args.i1, args.output, args.threads, level=args.level
        )
    except ConversionError as error:
        print(f"hca-archive convert: {error}", file=sys.stderr)
        return 1
    print(
        f"{result.output}: {result.read_count} reads, {result.output_bytes} bytes "
        f"in {result.seconds:.1f} s",
        file=sys.stderr,
    )
    if result.short_r1_reads:
        print(
            f"note: {result.short_r1_reads} reads have an R1 shorter than barcode+UMI; "
            "kept as they are",
            file=sys.stderr,
        )
    return 0
