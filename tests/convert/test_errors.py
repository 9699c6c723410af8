"""Bad inputs fail with the file and read number, and leave no BAM behind."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from hca_archive.convert import (
    ConversionError,
    VerificationError,
    convert_fastqs,
    fastq_stream,
    verify_bam,
)
from hca_archive.convert import converter as converter_module
from hca_archive.convert.fastq_stream import FastqDigest
from tests.convert.fastq_text import make_triplet


def convert_expecting_error(tmp_path: Path, paths: dict[str, Path], schema="10xV3") -> str:
    out = tmp_path / "out" / "run.bam"
    out.parent.mkdir(exist_ok=True)
    with pytest.raises(ConversionError) as caught:
        convert_fastqs(schema, paths["read1"], paths["read2"], paths.get("index1"), out)
    assert list(out.parent.iterdir()) == [], "a failed conversion left files behind"
    return str(caught.value)


@pytest.fixture(params=[1, 4, 20_000, "cut"], ids=["block1", "block4", "block20000", "cut"])
def block_reads(request, monkeypatch):
    """Blocks of 1, 4 or all reads; "cut": blocks cut short by bytes (as for long reads), each
    file's at other reads, so the files' blocks differ and surplus reads are given back."""
    if request.param == "cut":
        monkeypatch.setattr(fastq_stream, "MAX_TAKE_BYTES", 1)
        monkeypatch.setattr(fastq_stream, "MAX_CHUNK", 97)
    else:
        monkeypatch.setattr(converter_module, "BLOCK_READS", request.param)


def test_differing_read_counts(tmp_path, block_reads):
    triplet = make_triplet(10)
    del triplet.reads["read2"][7:]
    message = convert_expecting_error(tmp_path, triplet.write(tmp_path / "in"))
    assert "read1 (s_L001_R1_001.fastq.gz) read 8" in message
    assert "R2 (s_L001_R2_001.fastq.gz), which ends after 7 reads" in message


def test_mismatched_names(tmp_path, block_reads):
    triplet = make_triplet(10)
    triplet.reads["index1"][5][0] = "@another:name 2:N:0:GATCGATC"
    message = convert_expecting_error(tmp_path, triplet.write(tmp_path / "in"))
    assert "index1 (s_L001_I1_001.fastq.gz) read 6" in message
    assert "'another:name' does not match" in message


def test_truncated_gzip(tmp_path, block_reads):
    paths = make_triplet(3000).write(tmp_path / "in")
    data = paths["read2"].read_bytes()
    paths["read2"].write_bytes(data[: len(data) // 2])
    message = convert_expecting_error(tmp_path, paths)
    assert "read2 (s_L001_R2_001.fastq.gz) read" in message
    assert "gzip data is truncated" in message


def test_truncated_gzip_names_the_first_read_it_cut(tmp_path, block_reads):
    paths = make_triplet(7_500).write(tmp_path / "in")
    data = paths["read2"].read_bytes()[:-20]
    paths["read2"].write_bytes(data)
    readable = zlib.decompressobj(31).decompress(data)
    first_cut = readable.count(b"\n") // 4 + 1
    assert first_cut > 7_000
    message = convert_expecting_error(tmp_path, paths)
    assert f"read2 (s_L001_R2_001.fastq.gz) read {first_cut}: gzip data is truncated" in message


def test_corrupt_gzip(tmp_path):
    paths = make_triplet(300).write(tmp_path / "in")
    data = bytearray(paths["read1"].read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    paths["read1"].write_bytes(bytes(data))
    message = convert_expecting_error(tmp_path, paths)
    assert "read1 (s_L001_R1_001.fastq.gz) read" in message
    # corrupt, not cut short: the inflater's own error is named, not taken for truncation
    assert ": cannot read: " in message, message
    assert "truncated" not in message, message


def test_not_fastq(tmp_path, block_reads):
    paths = make_triplet(4).write(tmp_path / "in")
    paths["read2"].write_bytes(gzip.compress(b"name\tsize\nR1.fastq.gz\t12\n\n\n"))
    message = convert_expecting_error(tmp_path, paths)
    assert "read2 (s_L001_R2_001.fastq.gz) read 1: not a FASTQ header line" in message


def test_a_small_binary_file_is_named_not_fastq_rather_than_cut_short(tmp_path, block_reads):
    """A few lines of something else end "incomplete" too; the first line that is no FASTQ
    header is what a wrangler needs to see."""
    paths = make_triplet(4).write(tmp_path / "in")
    paths["read1"].write_bytes(gzip.compress(bytes(range(256)) * 2))
    message = convert_expecting_error(tmp_path, paths)
    assert "read1 (s_L001_R1_001.fastq.gz) read 1: not a FASTQ header line" in message


def test_record_cut_short_at_end_of_file(tmp_path, block_reads):
    triplet = make_triplet(5)
    paths = triplet.write(tmp_path / "in")
    paths["read1"].write_bytes(gzip.compress(triplet.text("read1").rsplit(b"\n", 3)[0]))
    message = convert_expecting_error(tmp_path, paths)
    assert "read1 (s_L001_R1_001.fastq.gz) read 5: incomplete record" in message


def test_sequence_and_quality_of_different_lengths(tmp_path, block_reads):
    triplet = make_triplet(6)
    triplet.reads["read2"][3][3] += "F"
    message = convert_expecting_error(tmp_path, triplet.write(tmp_path / "in"))
    assert "read2 (s_L001_R2_001.fastq.gz) read 4: 91 bases but 92 quality values" in message


def test_missing_plus_line(tmp_path):
    triplet = make_triplet(6)
    triplet.reads["read1"][2][2] = "-"
    message = convert_expecting_error(tmp_path, triplet.write(tmp_path / "in"))
    assert "read1 (s_L001_R1_001.fastq.gz) read 3: third line does not start with '+'" in message


def test_read_name_too_long_for_bam(tmp_path):
    triplet = make_triplet(3, comments=False)
    for index in triplet.reads:
        triplet.reads[index][1][0] = "@" + "x" * 300
    message = convert_expecting_error(tmp_path, triplet.write(tmp_path / "in"))
    assert "read2 (s_L001_R2_001.fastq.gz) read 2: read name" in message


@pytest.mark.parametrize("read", [0, 3])
def test_read_name_starting_with_an_at_sign(tmp_path, block_reads, read):
    """'@@name': SAM's QNAME cannot start with '@'. Such a BAM reads back here, but in SAM text
    the record is a line samtools takes for a header line (`samtools view -h | samtools view`
    fails), so the name is refused like any other a BAM cannot hold."""
    triplet = make_triplet(6)
    for index in triplet.reads:
        triplet.reads[index][read][0] = "@" + triplet.reads[index][read][0]
    message = convert_expecting_error(tmp_path, triplet.write(tmp_path / "in"))
    assert f"read2 (s_L001_R2_001.fastq.gz) read {read + 1}: read name '@A00123" in message


def test_unknown_schema(tmp_path):
    paths = make_triplet(3).write(tmp_path / "in")
    message = convert_expecting_error(tmp_path, paths, schema="10xV1")
    assert "unknown 10x schema '10xV1'" in message


def test_missing_input_file(tmp_path):
    paths = make_triplet(3).write(tmp_path / "in")
    paths["index1"].unlink()
    message = convert_expecting_error(tmp_path, paths)
    assert "index1" in message and "no such file" in message


def test_failed_conversion_keeps_an_earlier_output(tmp_path):
    paths = make_triplet(4).write(tmp_path / "in")
    out = tmp_path / "run.bam"
    out.write_bytes(b"earlier")
    paths["read2"].write_bytes(b"@r\nAC\n+\nFF\n")
    with pytest.raises(ConversionError):
        convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], out)
    assert out.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "run.bam"]


def test_verification_catches_a_digest_mismatch(tmp_path):
    paths = make_triplet(8).write(tmp_path / "in")
    bam = tmp_path / "out.bam"
    result = convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    original = result.inputs["read1"]
    result.inputs["read1"] = FastqDigest(original.path, "0" * 64, original.bytes, original.reads)
    with pytest.raises(VerificationError, match=r"R1 \(s_L001_R1_001.fastq.gz\): rebuilt SHA-256"):
        verify_bam(bam, result)
    result.inputs["read1"] = original
    verify_bam(bam, result)


def test_verification_rejects_a_bam_from_elsewhere(tmp_path):
    paths = make_triplet(8).write(tmp_path / "in")
    bam = tmp_path / "out.bam"
    result = convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    other = tmp_path / "other.bam"
    other.write_bytes(b"not a bam at all")
    with pytest.raises(VerificationError, match=r"other\.bam"):
        verify_bam(other, result)
