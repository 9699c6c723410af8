"""The libdeflate BGZF compressor: same content, same block boundaries, errors named."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zlib

import pysam
import pytest

from hca_archive.convert import bgzf, convert_fastqs
from hca_archive.convert.bam_pipes import BamWriter
from hca_archive.convert.bgzf import (
    EOF_BLOCK,
    HEADER,
    BgzfError,
    compress_block,
    recompress,
    stored_payloads,
)
from tests.convert.fastq_text import make_triplet


def stored_stream(payloads: list[bytes]) -> bytes:
    return b"".join(compress_block(payload, 0) for payload in payloads) + EOF_BLOCK


def block_sizes(data: bytes) -> list[int]:
    """The uncompressed size of every block in a BGZF stream, the EOF block included."""
    sizes, offset = [], 0
    while offset < len(data):
        bsize = HEADER.unpack_from(data, offset)[-1]
        sizes.append(int.from_bytes(data[offset + bsize - 3 : offset + bsize + 1], "little"))
        offset += bsize + 1
    return sizes


@pytest.mark.parametrize("level", [0, 1, 6, 12])
def test_recompressed_stream_keeps_content_and_block_boundaries(level):
    payloads = [b"ACGT" * 16_000, os.urandom(65_280), b"tail"]
    target = io.BytesIO()
    recompress(io.BytesIO(stored_stream(payloads)), target, level, threads=2)
    data = target.getvalue()
    assert data.endswith(EOF_BLOCK)
    assert block_sizes(data) == [64_000, 65_280, 4, 0]
    assert list(stored_payloads(io.BytesIO(data))) == payloads  # also checks every CRC
    if level:
        assert len(data) < len(stored_stream(payloads)), "level > 0 did not compress"


def test_incompressible_block_is_stored_and_still_fits():
    payload = os.urandom(65_280)
    block = compress_block(payload, 12)
    assert len(block) <= 1 << 16
    assert list(stored_payloads(io.BytesIO(block))) == [payload]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[:10], "block 1 is cut off in its header"),
        (lambda data: data[:-40], "block 2 is cut off"),
        (lambda data: b"\x1f\x8b\x08\x00" + data[4:], "block 1 does not start with a BGZF header"),
        (lambda data: data[:30] + bytes([data[30] ^ 1]) + data[31:], "block 1 fails its size"),
    ],
    ids=["header", "body", "magic", "crc"],
)
def test_damaged_input_is_named(damage, message):
    data = damage(stored_stream([b"first block " * 100, b"second"]))
    with pytest.raises(BgzfError, match=message):
        list(stored_payloads(io.BytesIO(data)))


def test_converted_bam_is_libdeflate_bgzf_readable_by_htslib(tmp_path):
    paths = make_triplet(2_000).write(tmp_path / "in")
    out = tmp_path / "run.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], out, threads=2)
    data = out.read_bytes()
    assert data.endswith(EOF_BLOCK)
    with pysam.AlignmentFile(str(out), "rb", check_sq=False) as bam:
        assert sum(1 for _ in bam) == 2_000


def test_compressor_failure_is_reported_by_the_writer(tmp_path):
    writer = BamWriter(tmp_path / "no-such-dir" / "run.bam", threads=1, level=6)
    with pytest.raises(OSError, match=r"run\.bam failed: bgzf: .*No such file or directory"):
        writer.write(b"@HD\tVN:1.6\n" + b"r\t4\t*\t0\t0\t*\t*\t0\t0\tA\tF\n" * 200_000)
        writer.close()


def test_command_line_refuses_a_non_bgzf_stream(tmp_path):
    result = subprocess.run(
        [sys.executable, bgzf.__file__, "--level", "6", tmp_path / "x.bam"],
        input=zlib.compress(b"not bgzf"),
        capture_output=True,
    )
    assert result.returncode == 1
    assert b"bgzf: BGZF block 1 is cut off in its header" in result.stderr
