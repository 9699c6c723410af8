"""Synthetic 10x FASTQ: layouts, Casava names shared across files, determinism."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from hca_archive.sandbox.fastq_gen import write_10x_fastqs, write_single_fastq

CASAVA = re.compile(r"@A00123:8:H5KJ2DSXX:1:\d{4}:\d+:\d+ ([123]):N:0:([ACGTN]+)")


def records(path: Path) -> list[list[str]]:
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    return [lines[i : i + 4] for i in range(0, len(lines), 4)]


@pytest.mark.parametrize(
    ("schema", "lengths"),
    [
        ("10xV2", {"read1": 26, "read2": 98, "index1": 8}),
        ("10xV3", {"read1": 28, "read2": 91, "index1": 10}),
    ],
)
def test_layouts_and_names(tmp_path: Path, schema: str, lengths: dict[str, int]) -> None:
    paths = write_10x_fastqs(schema, tmp_path, 1000, seed=1, with_i1=True)
    assert set(paths) == set(lengths)
    names = {}
    for number, read_index in enumerate(("read1", "read2", "index1"), start=1):
        reads = records(paths[read_index])
        assert len(reads) == 1000
        for header, sequence, plus, quality in reads:
            match = CASAVA.fullmatch(header)
            assert match, header
            assert match.group(1) == str(number)
            assert len(sequence) == len(quality) == lengths[read_index]
            assert plus == "+"
        names[read_index] = [read[0].split(" ")[0] for read in reads]
    assert names["read1"] == names["read2"] == names["index1"]
    assert len(set(names["read1"])) == 1000


def test_same_seed_same_bytes_and_no_index_when_asked(tmp_path: Path) -> None:
    first = write_10x_fastqs("10xV3", tmp_path / "a", 300, seed=5, with_i1=False)
    second = write_10x_fastqs("10xV3", tmp_path / "b", 300, seed=5, with_i1=False)
    other = write_10x_fastqs("10xV3", tmp_path / "c", 300, seed=6, with_i1=False)
    assert set(first) == {"read1", "read2"}
    assert [p.read_bytes() for p in first.values()] == [p.read_bytes() for p in second.values()]
    assert first["read2"].read_bytes() != other["read2"].read_bytes()


def test_single_fastq(tmp_path: Path) -> None:
    path = write_single_fastq(tmp_path / "x_R1_001.fastq.gz", 42, seed=3)
    reads = records(path)
    assert len(reads) == 42
    assert all(CASAVA.fullmatch(read[0]) and len(read[1]) == 75 for read in reads)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="10xV9"):
        write_10x_fastqs("10xV9", tmp_path, 10, seed=1)
    with pytest.raises(ValueError, match="reads"):
        write_10x_fastqs("10xV2", tmp_path, 0, seed=1)
