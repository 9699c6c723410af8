"""FastqStream hands out whole records however the decompressed chunks cut the lines."""

from __future__ import annotations

import gzip
import random

import pytest

from hca_archive.convert import fastq_stream
from hca_archive.convert.errors import ConversionError
from hca_archive.convert.fastq_stream import FastqStream


def random_fastq(rng: random.Random) -> bytes:
    records = [
        b"@r%d c\n%s\n+\n%s" % (i, b"A" * rng.randint(1, 9), b"F" * rng.randint(1, 9))
        for i in range(rng.randint(1, 40))
    ]
    text = b"\n".join(records)
    return text + b"\n" if rng.random() < 0.7 else text


@pytest.mark.parametrize("seed", range(40))
def test_blocks_are_the_files_lines_four_per_record(tmp_path, monkeypatch, seed):
    rng = random.Random(seed)
    monkeypatch.setattr(fastq_stream, "READ_SIZE", rng.randint(1, 64))  # gzip bytes per read
    monkeypatch.setattr(fastq_stream, "MAX_CHUNK", rng.randint(1, 64))  # lines cut anywhere
    text = random_fastq(rng)
    path = tmp_path / "R1.fastq.gz"
    path.write_bytes(gzip.compress(text))
    stream = FastqStream("read1", path)
    taken: list[bytes] = []
    try:
        while block := stream.take(rng.randint(1, 7)):
            taken += block
    finally:
        stream.close()
    assert taken == text.rstrip(b"\n").split(b"\n")
    assert stream.missing_final_newline == (not text.endswith(b"\n"))
    assert stream.reads == len(taken) // 4


def refused(path, reads: int, match: str) -> FastqStream:
    """The stream of `path`, after taking `reads` failed with an error matching `match`."""
    stream = FastqStream("read1", path)
    try:
        with pytest.raises(ConversionError, match=match):
            stream.take(reads)
    finally:
        stream.close()
    return stream


def test_a_file_cut_inside_a_record_names_the_record(tmp_path, monkeypatch):
    monkeypatch.setattr(fastq_stream, "MAX_CHUNK", 5)
    path = tmp_path / "R1.fastq.gz"
    path.write_bytes(gzip.compress(b"@a\nAC\n+\nFF\n@b\nAC\n"))
    refused(path, 5, r"read 2: incomplete record .*\(2 of 4 lines\)")


def test_a_line_without_end_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    """A gzip bomb of zeros (or any input without line breaks) was held whole in memory, as
    one unfinished line, until the end of the file: 1.4 MB of gzip took 634 MB of memory."""
    monkeypatch.setattr(fastq_stream, "MAX_LINE", 1 << 20)
    path = tmp_path / "R1.fastq.gz"
    with gzip.open(path, "wb", 1) as handle:
        handle.write(b"@r\nACGT\n+\nFFFF\n@s\n")
        for _ in range(16):
            handle.write(bytes(1 << 20))
    stream = refused(path, 1000, r"read 2: a line longer than 1048576 bytes")
    assert stream.digest().bytes < 4 << 20  # stopped reading soon after the limit


def test_a_block_of_long_reads_is_cut_short_by_bytes(tmp_path):
    """1,000 reads of a megabase would make a 2 GB block: a take stops once MAX_TAKE_BYTES are
    read (with at least one record), and the next goes on from there."""
    record = b"@r\n" + b"A" * (1 << 20) + b"\n+\n" + b"F" * (1 << 20) + b"\n"
    path = tmp_path / "R2.fastq.gz"
    with gzip.open(path, "wb", 1) as handle:
        for _ in range(20):
            handle.write(record)
    stream = FastqStream("read2", path)
    sizes = []
    try:
        while lines := stream.take(1000):
            sizes.append(len(lines) // 4)
            assert lines[1::4] == [b"A" * (1 << 20)] * (len(lines) // 4)
    finally:
        stream.close()
    limit = fastq_stream.MAX_TAKE_BYTES // len(record) + 1  # one record past the limit at most
    assert sum(sizes) == 20 and max(sizes) <= limit + 1 and len(sizes) > 1
