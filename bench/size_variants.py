"""Which inputs make our BAM larger than samtools import's: `python -m bench.size_variants`.

Not part of `make bench` (sizes only, no targets). Each variant is converted by both tools at
level 6; the table gives the BAM sizes and their ratio. The variants separate what the synthetic
set does not share with real 10x reads:

- the bench's synthetic 10xV3 set (uniform random barcodes, sample index and bases; NovaSeq-style
  binned qualities);
- the same with barcodes drawn from 5,000 cells and the sample index from 4 oligos, as in a
  real 10x library;
- synthetic 10xV2 reads of La Manno's lengths, names and quality values (no I1), then with La
  Manno's real R1 or real R2 in place of the synthetic one, then both real.
"""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import synthetic_10x
from bench.bench_convert import LEVEL, SAMTOOLS, THREADS, import_args, ours
from hca_archive.sandbox.lamanno import default_lamanno_dir

READS = 200_000
CELLS, SAMPLE_INDEXES = 5_000, 4
LAMANNO = default_lamanno_dir()


def _fastq_records(data: bytes) -> list[list[bytes]]:
    lines = data.split(b"\n")
    return [lines[i : i + 4] for i in range(0, len(lines) - 3, 4)]


def _write(path: Path, records: list[list[bytes]]) -> Path:
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(b"".join(b"\n".join(record) + b"\n" for record in records))
    return path


def _library_like(read: str, records: list[list[bytes]]) -> list[list[bytes]]:
    """R1's barcode from one of CELLS cells, I1 from one of SAMPLE_INDEXES oligos."""
    rng = random.Random(7)
    cells = [rng.randbytes(16).translate(synthetic_10x.BASE_TABLE) for _ in range(CELLS)]
    oligos = [rng.randbytes(10).translate(synthetic_10x.BASE_TABLE) for _ in range(4)]
    for record in records:
        if read == "R1":
            record[1] = rng.choice(cells) + record[1][16:]
        elif read == "I1":
            record[1] = rng.choice(oligos)
    return records


def _lamanno_records(read: str) -> list[list[bytes]]:
    with gzip.open(LAMANNO / f"{read}.fastq.gz", "rb") as handle:
        return _fastq_records(handle.read())


def _lamanno_like(read: str, real: list[list[bytes]], length: int) -> list[list[bytes]]:
    """Synthetic reads with the real file's names and comments, lengths and quality values."""
    qualities = Counter(b"".join(record[3] for record in real))
    population, weights = zip(*qualities.items(), strict=True)
    rng = random.Random(11)
    records = []
    for record in real:
        bases = rng.randbytes(length).translate(synthetic_10x.BASE_TABLE)
        quals = bytes(rng.choices(population, weights, k=length))
        records.append([record[0], bases, b"+", quals])
    return records


def _sizes(schema: str, files: dict[str, Path], work: Path) -> tuple[int, int]:
    mine, theirs = work / "ours.bam", work / "theirs.bam"
    subprocess.run(ours(schema, files, mine), check=True, capture_output=True)
    subprocess.run([SAMTOOLS, "import", *import_args(files, theirs)], check=True)
    return mine.stat().st_size, theirs.stat().st_size


def main() -> int:
    rows: list[tuple[str, int, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        uniform = {
            read: _fastq_records(synthetic_10x._chunk(read, 0, READS, 42))
            for read in synthetic_10x.LENGTHS
        }
        files = {read: _write(work / f"u_{read}.fastq.gz", r) for read, r in uniform.items()}
        rows.append(("synthetic 10xV3 (the bench's)", *_sizes("10xV3", files, work)))
        files = {
            read: _write(work / f"l_{read}.fastq.gz", _library_like(read, records))
            for read, records in uniform.items()
        }
        rows.append((f"... barcodes of {CELLS} cells, 4 indexes", *_sizes("10xV3", files, work)))
        real = {read: _lamanno_records(read) for read in ("R1", "R2")}
        synthetic = {
            read: _write(
                work / f"s_{read}.fastq.gz",
                _lamanno_like(read, records, len(records[0][1])),
            )
            for read, records in real.items()
        }
        lamanno = {read: LAMANNO / f"{read}.fastq.gz" for read in ("R1", "R2")}
        for name, files in (
            ("synthetic 10xV2 as La Manno", synthetic),
            ("... with La Manno's real R1", {"R1": lamanno["R1"], "R2": synthetic["R2"]}),
            ("... with La Manno's real R2", {"R1": synthetic["R1"], "R2": lamanno["R2"]}),
            ("La Manno (both real)", lamanno),
        ):
            rows.append((name, *_sizes("10xV2", files, work)))
    print(f"BAM sizes at level {LEVEL}, {THREADS} threads (synthetic 10xV3: {READS:,d} reads)")
    print(f"{'input':42s} {'ours MB':>9s} {'samtools MB':>12s} {'ours/samtools':>14s}")
    for name, mine, theirs in rows:
        print(f"{name:42s} {mine / 1e6:9.2f} {theirs / 1e6:12.2f} {mine / theirs:14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
