"""Synthetic 10x Chromium FASTQ triplets: deterministic for a seed, fast for millions of reads.

Reads carry Illumina Casava 1.8 names (``@A00123:8:H5KJ2DSXX:1:1101:10004:1000 1:N:0:GATCGATC``),
the same name in R1, R2 and I1 with the read number 1, 2 or 3 in the comment. R1 is a cell
barcode drawn from a small pool (so cells repeat, as in real data) followed by a random UMI.
"""

from __future__ import annotations

import gzip
import random
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHUNK_READS = 20_000
BARCODE_POOL = 1_000
READS_PER_TILE = 40_000
INSTRUMENT = b"A00123:8:H5KJ2DSXX"


@dataclass(frozen=True)
class ReadLayout:
    r1: int
    umi: int
    r2: int
    i1: int


SCHEMAS = {
    "10xV2": ReadLayout(r1=26, umi=10, r2=98, i1=8),
    "10xV3": ReadLayout(r1=28, umi=12, r2=91, i1=10),
}
BARCODE = 16

# Random bytes become bases (1 in 256 an N) and binned NovaSeq qualities (mostly F).
_BASES = bytes(b"N"[0] if value == 255 else b"ACGT"[value & 3] for value in range(256))
_QUALS = bytes(
    b"F"[0] if value < 200 else b":"[0] if value < 235 else b","[0] if value < 252 else b"#"[0]
    for value in range(256)
)


def fastq_names(prefix: str, with_i1: bool) -> dict[str, str]:
    """File names per read index, in bcl2fastq's ``<sample>_S1_L001_R1_001.fastq.gz`` style."""
    names = {"read1": f"{prefix}_R1_001.fastq.gz", "read2": f"{prefix}_R2_001.fastq.gz"}
    if with_i1:
        names["index1"] = f"{prefix}_I1_001.fastq.gz"
    return names


def write_10x_fastqs(
    schema: str,
    out_dir: Path,
    reads: int,
    seed: int,
    with_i1: bool = True,
    *,
    prefix: str = "sample_S1_L001",
    compresslevel: int = 1,
) -> dict[str, Path]:
    """Write R1, R2 (and I1) FASTQ.gz files of ``reads`` reads; returns their paths by read index.

    The same arguments give byte-identical files (gzip header time is fixed).
    """
    if schema not in SCHEMAS:
        raise ValueError(f"unknown 10x schema {schema!r} (known: {', '.join(SCHEMAS)})")
    if reads < 1:
        raise ValueError(f"reads must be at least 1, got {reads}")
    layout = SCHEMAS[schema]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {index: out_dir / name for index, name in fastq_names(prefix, with_i1).items()}
    rng = random.Random(seed)
    barcodes = [
        rng.randbytes(BARCODE).translate(_BASES).replace(b"N", b"A") for _ in range(BARCODE_POOL)
    ]
    sample_index = rng.randbytes(layout.i1).translate(_BASES).replace(b"N", b"G")
    writers = {index: _Writer(path, compresslevel) for index, path in paths.items()}
    try:
        done = 0
        while done < reads:
            count = min(CHUNK_READS, reads - done)
            chunk = _chunk(rng, layout, barcodes, sample_index, done, count, with_i1)
            for index, data in chunk.items():
                writers[index].write(data)
            done += count
    finally:
        for writer in writers.values():
            writer.close()
    return paths


def write_single_fastq(path: Path, reads: int, seed: int, length: int = 75) -> Path:
    """Write one plain FASTQ.gz (Smart-seq2 style, no barcodes) of ``reads`` reads."""
    if reads < 1:
        raise ValueError(f"reads must be at least 1, got {reads}")
    rng = random.Random(seed)
    comment = b":N:0:" + rng.randbytes(8).translate(_BASES).replace(b"N", b"C") + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _Writer(path, compresslevel=1)
    try:
        for first in range(0, reads, CHUNK_READS):
            count = min(CHUNK_READS, reads - first)
            seq = rng.randbytes(count * length).translate(_BASES)
            qual = rng.randbytes(count * length).translate(_QUALS)
            writer.write(
                b"".join(
                    b"%s 1%s%s\n+\n%s\n"
                    % (
                        name,
                        comment,
                        seq[i * length : (i + 1) * length],
                        qual[i * length : (i + 1) * length],
                    )
                    for i, name in enumerate(_read_names(rng, first, count))
                )
            )
    finally:
        writer.close()
    return path


def _read_names(rng: random.Random, first: int, count: int) -> list[bytes]:
    """Casava 1.8 read names, unique per run: tile from the read number, then x and y."""
    names = []
    for number in range(first, first + count):
        tile, spot = divmod(number, READS_PER_TILE)
        x = rng.randrange(1000, 32000)
        names.append(b"@%s:1:%d:%d:%d" % (INSTRUMENT, 1101 + tile, x, 1000 + spot))
    return names


def _chunk(
    rng: random.Random,
    layout: ReadLayout,
    barcodes: list[bytes],
    sample_index: bytes,
    first: int,
    count: int,
    with_i1: bool,
) -> dict[str, bytes]:
    names = _read_names(rng, first, count)
    comment = b":N:0:" + sample_index + b"\n"
    cells = rng.choices(barcodes, k=count)
    umi_len, r2_len, i1_len = layout.umi, layout.r2, layout.i1
    extra = layout.r1 - BARCODE - umi_len
    umis = rng.randbytes(count * (umi_len + extra)).translate(_BASES)
    r2_seq = rng.randbytes(count * r2_len).translate(_BASES)
    r1_qual = rng.randbytes(count * layout.r1).translate(_QUALS)
    r2_qual = rng.randbytes(count * r2_len).translate(_QUALS)
    r1_out, r2_out = [], []
    tail = umi_len + extra
    for i, name in enumerate(names):
        r1_out.append(
            b"%s 1%s%s%s\n+\n%s\n"
            % (
                name,
                comment,
                cells[i],
                umis[i * tail : (i + 1) * tail],
                r1_qual[i * layout.r1 : (i + 1) * layout.r1],
            )
        )
        r2_out.append(
            b"%s 2%s%s\n+\n%s\n"
            % (
                name,
                comment,
                r2_seq[i * r2_len : (i + 1) * r2_len],
                r2_qual[i * r2_len : (i + 1) * r2_len],
            )
        )
    chunk = {"read1": b"".join(r1_out), "read2": b"".join(r2_out)}
    if with_i1:
        errors = rng.randbytes(count)
        i1_qual = rng.randbytes(count * i1_len).translate(_QUALS)
        mutated = sample_index[:-1] + b"N"
        chunk["index1"] = b"".join(
            b"%s 3%s%s\n+\n%s\n"
            % (
                name,
                comment,
                mutated if errors[i] == 0 else sample_index,
                i1_qual[i * i1_len : (i + 1) * i1_len],
            )
            for i, name in enumerate(names)
        )
    return chunk


class _Writer:
    """A gzip file written by its own thread, so compression overlaps generating the next chunk."""

    def __init__(self, path: Path, compresslevel: int) -> None:
        self._raw = path.open("wb")
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=compresslevel, mtime=0
        )
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[int] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pending = self._pool.submit(self._gzip.write, data)

    def close(self) -> None:
        try:
            if self._pending is not None:
                self._pending.result()
        finally:
            self._pool.shutdown()
            self._gzip.close()
            self._raw.close()
