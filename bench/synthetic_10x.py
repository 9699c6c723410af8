"""Synthetic 10x FASTQ triplets for the benchmarks: fixed seed, Casava headers, gzip level 6.

Files are generated once into a cache directory and reused; a `.done` marker guards against a
half-written set being mistaken for a complete one.
"""

from __future__ import annotations

import random
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

LENGTHS = {"R1": 28, "R2": 91, "I1": 10}
READ_NUMBER = {"R1": 1, "R2": 3, "I1": 2}
READS_PER_CHUNK = 50_000
BASES = b"ACGT"
# NovaSeq-style binned qualities, mostly high: F=37, :=25, ,=11, #=2.
QUALITY_BINS = b"F" * 200 + b":" * 40 + b"," * 14 + b"#" * 2
BASE_TABLE = bytes(BASES[i % 4] for i in range(256))
QUALITY_TABLE = bytes(QUALITY_BINS[i] for i in range(256))


def _chunk(read: str, first: int, count: int, seed: int) -> bytes:
    rng = random.Random(seed * 1_000_003 + first)  # same reads names in every file of one set
    length = LENGTHS[read]
    seq_rng = random.Random(f"{seed}-{read}-{first}")
    bases = seq_rng.randbytes(count * length).translate(BASE_TABLE)
    quals = seq_rng.randbytes(count * length).translate(QUALITY_TABLE)
    comment = f"{READ_NUMBER[read]}:N:0:GATCGATCAA".encode()
    lines = []
    for i in range(count):
        tile = 1101 + (first + i) // 400_000
        x, y = rng.randrange(1000, 32000), rng.randrange(1000, 37000)
        start = i * length
        lines.append(
            b"@A00123:456:HXXXXDSXY:1:%d:%d:%d %s\n%s\n+\n%s\n"
            % (tile, x, y, comment, bases[start : start + length], quals[start : start + length])
        )
    return b"".join(lines)


def _write_file(read: str, path: Path, reads: int, seed: int) -> None:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    partial = path.with_suffix(".part")
    with open(partial, "wb") as out:
        for first in range(0, reads, READS_PER_CHUNK):
            count = min(READS_PER_CHUNK, reads - first)
            out.write(compressor.compress(_chunk(read, first, count, seed)))
        out.write(compressor.flush())
    partial.rename(path)


def synthetic_10xv3(cache: Path, reads: int, seed: int = 42) -> dict[str, Path]:
    """Return {R1, R2, I1} gzip FASTQ paths holding `reads` 10xV3 triplets (28/91/10 bp)."""
    folder = cache / f"10xv3-{reads}-seed{seed}"
    paths = {read: folder / f"S1_L001_{read}_001.fastq.gz" for read in LENGTHS}
    marker = folder / ".done"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(max_workers=3) as pool:
            jobs = [pool.submit(_write_file, r, paths[r], reads, seed) for r in LENGTHS]
            for job in jobs:
                job.result()
        marker.touch()
    return paths
