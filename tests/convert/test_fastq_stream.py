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


def test_a_file_cut_inside_a_record_names_the_record(tmp_path, monkeypatch):
    monkeypatch.setattr(fastq_stream, "MAX_CHUNK", 5)
    path = tmp_path / "R1.fastq.gz"
    path.write_bytes(gzip.compress(b"@a\nAC\n+\nFF\n@b\nAC\n"))
    stream = FastqStream("read1", path)
    try:
        with pytest.raises(ConversionError, match=r"read 2: incomplete record .*\(2 of 4 lines\)"):
            stream.take(5)
    finally:
        stream.close()
