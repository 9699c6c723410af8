"""BAM written by convert_fastqs -> the original FASTQ files, and the check that they match."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hca_archive.convert.converter import ConversionResult
from hca_archive.convert.errors import VerificationError
from hca_archive.convert.gc_pause import without_gc
from hca_archive.convert.layout import LABELS, Layout, decode_block
from hca_archive.convert.sam_reader import sam_lines

REBUILD_LEVEL = 6


def read_layout(bam: Path) -> Layout:
    import pysam  # not at module level: the converter itself never needs pysam in-process

    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
        comments = handle.header.to_dict().get("CO", [])
    return Layout.from_comments(comments)


def fastq_blocks(bam: Path, layout: Layout) -> Iterator[tuple[int, dict[str, bytes]]]:
    """(reads, FASTQ text per read index) for each block of reads, in the original order."""
    records = 0
    unended: set[str] = set()  # see decode_block
    for lines in sam_lines(bam):
        yield len(lines), decode_block(layout, lines, records + 1, unended)
        records += len(lines)


def _overlapped(
    blocks: Iterator[tuple[int, dict[str, bytes]]], sinks: dict, method: str
) -> Iterator[tuple[int, dict[str, bytes]]]:
    """Feed each block's texts to `sinks[index].<method>` in threads (gzip and SHA-256 release the
    GIL) while the next block is decoded; a block's calls end before the next block's begin, so
    every sink gets its texts in order."""
    with ThreadPoolExecutor(max_workers=len(sinks)) as pool:
        pending: list[Future] = []
        for reads, block in blocks:
            for future in pending:
                future.result()
            pending = [pool.submit(getattr(sinks[i], method), text) for i, text in block.items()]
            yield reads, block
        for future in pending:
            future.result()


def output_names(layout: Layout) -> dict[str, str]:
    """Per read index, the original file name when it is a plain file name, else R1/R2/I1;
    always gzip. A name with a path (or not printable: a line break would split the list of
    files the command prints) is not used. Names two inputs share (``a/S1.fastq.gz`` and
    ``b/S1.fastq.gz``, or ``S1.fastq`` and ``S1.fastq.gz``) get their R1_/R2_/I1_ prefix, so
    that no file overwrites another; all do when that prefix makes one another's name
    (``R2_x.fastq.gz`` beside two ``x.fastq.gz``)."""
    names = {}
    for index, file in layout.files.items():
        name = file.name
        if name in ("", ".", "..") or "/" in name or "\\" in name or not name.isprintable():
            name = f"{LABELS[index]}.fastq.gz"
        names[index] = name if name.endswith(".gz") else name + ".gz"
    shared = [name for name in names.values() if list(names.values()).count(name) > 1]
    prefixed = {
        index: f"{LABELS[index]}_{name}" if name in shared else name
        for index, name in names.items()
    }
    if len(set(prefixed.values())) < len(prefixed):  # a prefixed name is another's own name
        return {index: f"{LABELS[index]}_{name}" for index, name in names.items()}
    return prefixed


@without_gc
def rebuild_fastqs(bam: Path | str, outdir: Path | str) -> dict[str, Path]:
    """Write the gzip FASTQ files a BAM was made from into `outdir`; returns them by read index."""
    bam, outdir = Path(bam), Path(outdir)
    layout = read_layout(bam)
    outdir.mkdir(parents=True, exist_ok=True)
    targets = {index: outdir / name for index, name in output_names(layout).items()}
    partial = {index: path.with_name(f".{path.name}.partial") for index, path in targets.items()}
    try:
        with contextlib.ExitStack() as stack:
            handles = {
                index: stack.enter_context(gzip.open(path, "wb", REBUILD_LEVEL))
                for index, path in partial.items()
            }
            for _reads, _block in _overlapped(fastq_blocks(bam, layout), handles, "write"):
                pass
        for index, path in partial.items():
            os.replace(path, targets[index])
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
    return targets


@without_gc
def verify_bam(
    bam: Path | str, result: ConversionResult, progress: Callable[[int], None] | None = None
) -> None:
    """Raise VerificationError unless the BAM rebuilds exactly the inputs `result` describes.

    `progress` is told, after each block of reads, how many more bytes of FASTQ text have been
    rebuilt; in all, the inputs' decompressed size when they match.
    """
    bam = Path(bam)
    try:
        layout = read_layout(bam)
    except (ValueError, OSError) as error:
        raise VerificationError(f"{bam}: {error}") from error
    if set(layout.files) != set(result.inputs):
        raise VerificationError(
            f"{bam}: holds reads {sorted(layout.files)}, expected {sorted(result.inputs)}"
        )
    digests = {index: hashlib.sha256() for index in layout.files}
    sizes = dict.fromkeys(layout.files, 0)
    reads = 0
    try:
        for block_reads, block in _overlapped(fastq_blocks(bam, layout), digests, "update"):
            reads += block_reads
            for index, text in block.items():
                sizes[index] += len(text)
            if progress is not None:
                progress(sum(map(len, block.values())))
    except (OSError, ValueError) as error:
        raise VerificationError(f"{bam}: cannot rebuild the FASTQ files: {error}") from error
    problems = []
    for index, expected in result.inputs.items():
        rebuilt = (digests[index].hexdigest(), sizes[index], reads)
        if rebuilt != (expected.sha256, expected.bytes, expected.reads):
            problems.append(
                f"{LABELS[index]} ({os.path.basename(expected.path)}): "
                f"rebuilt SHA-256 {rebuilt[0]}, {rebuilt[1]} bytes, {rebuilt[2]} reads; "
                f"input SHA-256 {expected.sha256}, "
                f"{expected.bytes} bytes, {expected.reads} reads"
            )
    if problems:
        raise VerificationError(f"{bam} does not rebuild its inputs: " + "; ".join(problems))
