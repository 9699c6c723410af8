"""The BAM the converter writes: htslib's own binary encoding, in libdeflate BGZF blocks."""

from __future__ import annotations

import ctypes
import gzip
import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pysam
import pytest

from hca_archive.convert import bgzf, convert_fastqs
from hca_archive.convert.bam_pipes import BamWriter
from hca_archive.convert.bgzf import (
    BLOCK_PAYLOAD,
    EOF_BLOCK,
    HEADER,
    LIBDEFLATE_LEVELS,
    compress,
    compress_block,
)
from tests.convert.fastq_text import make_triplet
from tests.convert.test_round_trip import irregular_triplet

SAMTOOLS = "/usr/bin/samtools"


def block_sizes(data: bytes) -> list[int]:
    """The uncompressed size of every block in a BGZF stream, the EOF block included."""
    sizes, offset = [], 0
    while offset < len(data):
        bsize = HEADER.unpack_from(data, offset)[-1]
        sizes.append(int.from_bytes(data[offset + bsize - 3 : offset + bsize + 1], "little"))
        offset += bsize + 1
    return sizes


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_stream_is_cut_into_htslib_sized_blocks_and_keeps_its_content(level):
    content = b"ACGT" * 16_000 + os.urandom(70_000) + b"tail"
    target = io.BytesIO()
    compress(io.BytesIO(content), target, level, threads=2)
    data = target.getvalue()
    assert data.endswith(EOF_BLOCK)
    assert block_sizes(data) == [BLOCK_PAYLOAD, BLOCK_PAYLOAD, len(content) - 2 * BLOCK_PAYLOAD, 0]
    assert gzip.decompress(data) == content  # gzip checks every block's CRC and size
    if level:
        assert len(data) < len(content), "level > 0 did not compress"


def test_each_level_makes_the_blocks_samtools_makes_at_that_level(tmp_path):
    """At a level of the same name both tools must do the same work, so the benchmark compares
    like with like: htslib maps samtools' levels onto libdeflate's (6 is 7, 9 is 12). Through
    Debian's own libdeflate, our table must give samtools' blocks byte for byte at every level;
    through ours (another libdeflate release, which differs at 12), so must compress() at 1-8."""
    debian = DebianLibdeflate()
    paths = make_triplet(3_000).write(tmp_path / "in")
    ours = tmp_path / "ours.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], ours)
    for level in range(1, 10):
        theirs = subprocess.run(
            [SAMTOOLS, "view", "--no-PG", "-O", f"bam,level={level}", ours],
            check=True,
            capture_output=True,
        ).stdout
        blocks = split_blocks(theirs)[:-1]
        assert len(blocks) > 2, "too little data to compare"
        payloads = [gzip.decompress(block) for block in blocks]
        raw = [debian.compress(payload, LIBDEFLATE_LEVELS[level]) for payload in payloads]
        assert raw == [block[18:-8] for block in blocks], f"level {level}"
        if level < 9:
            for payload, block in zip(payloads, blocks, strict=True):
                target = io.BytesIO()
                compress(io.BytesIO(payload), target, level, threads=1)
                assert target.getvalue() == block + EOF_BLOCK, f"level {level}"


class DebianLibdeflate:
    """The libdeflate Debian's samtools links, called directly."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libdeflate.so.0")
        self.lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
        self.lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
        self.lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
        self.lib.libdeflate_deflate_compress.restype = ctypes.c_size_t
        self.lib.libdeflate_deflate_compress.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_void_p,
            ctypes.c_size_t,
        ]

    def compress(self, payload: bytes, level: int) -> bytes:
        compressor = self.lib.libdeflate_alloc_compressor(level)
        try:
            out = ctypes.create_string_buffer(2 * len(payload) + 1024)
            size = self.lib.libdeflate_deflate_compress(
                compressor, payload, len(payload), out, len(out)
            )
            assert size > 0
            return out.raw[:size]
        finally:
            self.lib.libdeflate_free_compressor(compressor)


@pytest.mark.parametrize("level", [-1, 10, "6"])
def test_a_level_outside_samtools_range_is_refused_before_the_fork(tmp_path, level):
    with pytest.raises(ValueError, match=f"must be 0 to 9, not {level!r}"):
        BamWriter(tmp_path / "run.bam", threads=1, level=level)
    assert not (tmp_path / "run.bam").exists()


def split_blocks(data: bytes) -> list[bytes]:
    blocks, offset = [], 0
    while offset < len(data):
        end = offset + HEADER.unpack_from(data, offset)[-1] + 1
        blocks.append(data[offset:end])
        offset = end
    return blocks


def test_a_slow_block_holds_back_neither_the_other_threads_nor_the_order(monkeypatch):
    """Block 0 finishes only after blocks 1 and 2: with blocks dealt to threads in turn, block 2
    would wait behind block 0 in its thread for ever."""
    compress_block = bgzf.compress_block
    finished: set[int] = set()
    later_blocks_done = threading.Event()

    def slow_first_block(payload: bytes, level: int) -> bytes:
        number = payload[0]
        if number == 0:
            assert later_blocks_done.wait(10), "blocks 1 and 2 waited for block 0"
        block = compress_block(payload, level)
        finished.add(number)
        if {1, 2} <= finished:
            later_blocks_done.set()
        return block

    monkeypatch.setattr(bgzf, "compress_block", slow_first_block)
    content = b"".join(bytes([number]) * BLOCK_PAYLOAD for number in range(5))
    target = io.BytesIO()
    compress(io.BytesIO(content), target, 6, threads=2)
    assert gzip.decompress(target.getvalue()) == content


def test_incompressible_block_is_stored_and_still_fits():
    payload = os.urandom(BLOCK_PAYLOAD)
    block = compress_block(payload, 12)
    assert len(block) <= 1 << 16
    assert gzip.decompress(block) == payload


def test_records_are_byte_for_byte_what_htslib_makes_of_the_same_sam(tmp_path):
    """Our BAM -> SAM text -> samtools' BAM: the uncompressed streams must be identical, for
    regular reads and for every oddity the slow path stores (empty SEQ, hex tags, ...)."""
    triplets = {
        "odd R2 length": make_triplet(300, r2_length=91),
        "even R2 length": make_triplet(300, r2_length=90),
        "irregular": irregular_triplet(),
    }
    for name, triplet in triplets.items():
        paths = triplet.write(tmp_path / name)
        ours = tmp_path / f"{name}.bam"
        convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], ours)
        sam = subprocess.run(
            [SAMTOOLS, "view", "-h", "--no-PG", ours], check=True, capture_output=True
        ).stdout
        theirs = subprocess.run(
            [SAMTOOLS, "view", "-u", "--no-PG", "-"], input=sam, check=True, capture_output=True
        ).stdout
        assert gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs), name


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
        for _ in range(100):
            writer.write(os.urandom(1 << 16))
        writer.close()


def test_a_writer_ends_while_a_later_one_is_open(tmp_path):
    """The second writer's forked child must not hold the first one's pipe open."""
    first = BamWriter(tmp_path / "first.bam", threads=1, level=6)
    second = BamWriter(tmp_path / "second.bam", threads=1, level=6)
    first.write(b"first")
    closing = threading.Thread(target=first.close, daemon=True)
    closing.start()
    closing.join(timeout=30)
    assert not closing.is_alive(), "the first compressor never saw the end of its input"
    second.write(b"second")
    second.close()
    for name, content in (("first", b"first"), ("second", b"second")):
        assert gzip.decompress((tmp_path / f"{name}.bam").read_bytes()) == content


def test_the_compressor_leaves_no_process_behind(tmp_path):
    children = _children()
    closed = BamWriter(tmp_path / "closed.bam", threads=2, level=6)
    closed.write(os.urandom(1 << 16))
    closed.close()
    aborted = BamWriter(tmp_path / "aborted.bam", threads=2, level=6)
    aborted.write(os.urandom(1 << 16))
    aborted.abort()
    assert _children() == children


def _children() -> set[str]:
    tasks = Path(f"/proc/{os.getpid()}/task")
    return {child for task in tasks.iterdir() for child in (task / "children").read_text().split()}


def test_a_failed_writer_is_aborted_without_signalling_its_reaped_pid(tmp_path, monkeypatch):
    writer = BamWriter(tmp_path / "no-such-dir" / "run.bam", threads=1, level=6)
    with pytest.raises(OSError, match="No such file or directory"):
        writer.write(os.urandom(1 << 16))
        writer.close()
    kills = []
    monkeypatch.setattr(os, "kill", lambda *args: kills.append(args))
    writer.abort()  # as the converter's cleanup does after the failure
    assert kills == []


def test_a_killed_compressor_is_named_as_killed(tmp_path):
    writer = BamWriter(tmp_path / "run.bam", threads=1, level=6)
    os.kill(writer._pid, signal.SIGTERM)
    with pytest.raises(OSError, match=r"run\.bam failed: killed by SIGTERM"):
        for _ in range(100):
            writer.write(os.urandom(1 << 16))
        writer.close()


@pytest.mark.parametrize("kept", [(5, 6), (6, 5), (4, 7)])
def test_the_compressor_keeps_only_stdio_and_its_two_pipes(kept):
    probe = (
        "import os, sys\n"
        "from hca_archive.convert.bam_pipes import _keep_only\n"
        "for number in range(3, 9):\n"
        "    os.dup2(0, number)\n"
        f"_keep_only(*{kept!r})\n"
        "print(*os.listdir('/proc/self/fd'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    listed = set(map(int, result.stdout.split()))  # the listing's own descriptor among them
    assert {0, 1, 2, *kept} <= listed and len(listed - {0, 1, 2, *kept}) <= 1
