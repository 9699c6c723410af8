"""10x FASTQ triplet -> one lossless unaligned BAM (see layout.py for the record layout)."""

from __future__ import annotations

import contextlib
import os
import time
from collections import namedtuple
from collections.abc import Callable

from hca_archive import __version__
from hca_archive.convert import bam_encoding
from hca_archive.convert.bam_pipes import BamWriter
from hca_archive.convert.errors import ConversionError
from hca_archive.convert.fastq_stream import FastqDigest, FastqStream
from hca_archive.convert.gc_pause import without_gc
from hca_archive.convert.layout import LABELS, BlockEncoder, Layout, infer_file_layout
from hca_archive.convert.schema import get_schema

# ~0.3 MB of BAM per block, less than the pipe to the compressor holds, so that writing a block
# seldom waits. Small blocks stay in the CPU's caches: with the smaller read-ahead in
# fastq_stream, 1,000 reads were 3-8% faster than 2,500 (2026-11-30, La Manno and 500,000
# synthetic reads) and halved peak memory (with 2 MB read-ahead, 1,500 had been slower).
BLOCK_READS = 1_000
DEFAULT_LEVEL = 6  # BGZF compression level (samtools' scale and default; see bgzf.py)


_RESULT_FIELDS = "schema output read_count inputs output_bytes seconds short_r1_reads"


class ConversionResult(namedtuple("ConversionResult", _RESULT_FIELDS)):
    __slots__ = ()
    schema: str
    output: str
    read_count: int
    inputs: dict[str, FastqDigest]  # by read index: read1, read2, index1
    output_bytes: int
    seconds: float
    short_r1_reads: int  # R1 shorter than barcode+UMI, kept as they are


@without_gc
def convert_fastqs(
    schema: str,
    r1: str | os.PathLike[str],
    r2: str | os.PathLike[str],
    i1: str | os.PathLike[str] | None,
    out: str | os.PathLike[str],
    threads: int = 1,
    *,
    level: int = DEFAULT_LEVEL,
    progress: Callable[[int], None] | None = None,
) -> ConversionResult:
    """Convert one 10x run to `out`; nothing is left at `out` unless every read converted.

    `progress` is told, after each block of reads, how many more bytes of the input files (as
    stored, gzip) have been read; in all, their size.
    """
    started = time.monotonic()
    layout_schema = get_schema(schema)
    paths = {"read1": os.fspath(r1), "read2": os.fspath(r2)}
    if i1 is not None:
        paths["index1"] = os.fspath(i1)
    # os.path, not pathlib: pathlib's imports cost ~10 ms of start-up, which counts on small inputs
    out = os.fspath(out)
    folder, name = os.path.split(out)
    partial = os.path.join(folder, f".{name}.{os.getpid()}.partial")
    streams: dict[str, FastqStream] = {}
    writer = None
    try:
        writer = BamWriter(partial, threads, level)  # first: its start-up overlaps our reading
        for index, path in paths.items():
            streams[index] = FastqStream(index, path)
        block = {index: stream.take(BLOCK_READS) for index, stream in streams.items()}
        layout = Layout(
            layout_schema,
            {
                index: infer_file_layout(os.path.basename(path), block[index][:4])
                for index, path in paths.items()
            },
        )
        encoder = BlockEncoder(layout, streams)
        header_text = "\n".join(layout.header_lines(__version__)) + "\n"
        writer.write(bam_encoding.header(header_text.encode()))
        read_count = reported = 0
        while True:
            counts = {index: len(lines) // 4 for index, lines in block.items()}
            reads = min(counts.values())
            for index, lines in block.items():  # a block of long reads was cut short
                if counts[index] > reads:
                    streams[index].give_back(lines[4 * reads :])
            if reads:  # reads present in every file first, so errors come in read order
                common = {index: lines[: 4 * reads] for index, lines in block.items()}
                ragged = {i for i, s in streams.items() if s.missing_final_newline}
                writer.write(encoder.encode(common, read_count + 1, ragged))
                read_count += reads
                if progress is not None:
                    read = sum(stream.stored_bytes_read for stream in streams.values())
                    progress(read - reported)
                    reported = read
            elif max(counts.values()):  # a file ended while another goes on
                raise _ran_out(streams, counts, read_count)
            else:
                break
            block = {index: stream.take(BLOCK_READS) for index, stream in streams.items()}
        writer.close()
        writer = None
        os.replace(partial, out)
    except OSError as error:
        raise ConversionError(f"converting to {out}: {error}") from error
    finally:
        if writer is not None:
            writer.abort()
        for stream in streams.values():
            stream.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    return ConversionResult(
        schema=layout_schema.name,
        output=out,
        read_count=read_count,
        inputs={index: stream.digest() for index, stream in streams.items()},
        output_bytes=os.stat(out).st_size,
        seconds=time.monotonic() - started,
        short_r1_reads=encoder.short_r1_reads,
    )


def _ran_out(streams: dict[str, FastqStream], counts: dict[str, int], done: int) -> ConversionError:
    """The error for files of different lengths, naming the first read without partners."""
    fewest = min(counts.values())
    short = next(index for index, count in counts.items() if count == fewest)
    longer = next(index for index, count in counts.items() if count > fewest)
    return ConversionError(
        f"{streams[longer].describe(done + 1)}: no matching read in {LABELS[short]} "
        f"({os.path.basename(streams[short].path)}), which ends after {done} reads"
    )
