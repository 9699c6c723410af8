"""Every input FASTQ comes back byte-identical from the BAM alone."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pysam
import pytest

from hca_archive.convert import convert_fastqs, fastq_stream, rebuild_fastqs, verify_bam
from hca_archive.convert import converter as converter_module
from tests.convert.fastq_text import Triplet, make_triplet


def round_trip(tmp_path: Path, schema: str, paths: dict[str, Path], threads: int = 1):
    bam = tmp_path / "out.bam"
    result = convert_fastqs(
        schema, paths["read1"], paths["read2"], paths.get("index1"), bam, threads
    )
    verify_bam(bam, result)
    rebuilt = rebuild_fastqs(bam, tmp_path / "rebuilt")
    assert set(rebuilt) == set(paths)
    for index, path in paths.items():
        expected_name = path.name if path.suffix == ".gz" else path.name + ".gz"
        assert rebuilt[index].name == expected_name
        with gzip.open(rebuilt[index]) as handle:
            rebuilt_text = handle.read()
        assert rebuilt_text == _decompressed(path), index
    return result, bam


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def test_10xv2_with_i1_and_casava_comments(tmp_path):
    paths = make_triplet(50, r1_length=26, i1_length=8).write(tmp_path / "in")
    result, _bam = round_trip(tmp_path, "10xV2", paths)
    assert result.read_count == 50
    assert result.inputs["index1"].reads == 50
    assert result.inputs["read1"].bytes == len(_decompressed(paths["read1"]))


def test_10xv3_without_i1(tmp_path):
    paths = make_triplet(40, i1_length=None).write(tmp_path / "in")
    result, _bam = round_trip(tmp_path, "10xV3", paths)
    assert set(result.inputs) == {"read1", "read2"}


@pytest.mark.parametrize(("comments", "suffixes"), [(False, False), (False, True), (True, True)])
def test_names_with_and_without_comments_and_suffixes(tmp_path, comments, suffixes):
    paths = make_triplet(30, comments=comments, suffixes=suffixes).write(tmp_path / "in")
    round_trip(tmp_path, "10xV3", paths)


def test_long_r1_and_long_i1(tmp_path):
    paths = make_triplet(30, r1_length=150, i1_length=12).write(tmp_path / "in")
    _result, bam = round_trip(tmp_path, "10xV3", paths)
    with pysam.AlignmentFile(str(bam), check_sq=False) as handle:
        record = next(iter(handle))
    assert len(record.get_tag("s1")) == 150 - 28
    assert len(record.get_tag("BC")) == 12


def irregular_triplet() -> Triplet:
    """Reads that differ from their file's defaults, one oddity per read."""
    triplet = make_triplet(24, r1_length=28, i1_length=10)
    r1, r2, i1 = (triplet.reads[index] for index in ("read1", "read2", "index1"))
    r1[1][0] = r1[1][0].replace("1:N:0", "1:Y:0")  # filtered read: another comment
    r2[2][0] = r2[2][0].split(" ")[0]  # comment missing in one file
    r1[3][1], r1[3][3] = r1[3][1][:20], r1[3][3][:20]  # R1 shorter than barcode+UMI
    r1[4][1], r1[4][3] = "", ""  # empty R1
    r2[5][1], r2[5][3] = "acgtn" * 3, "F" * 15  # lower case bases BAM would upper-case
    r2[6][1], r2[6][3] = "A", "*"  # a quality that SAM reads as "missing"
    r2[7][1], r2[7][3] = "", ""  # empty R2
    r2[8][1] = "AC.T" + r2[8][1][4:]  # '.' BAM would store as N
    r2[9][2] = "+" + r2[9][0][1:]  # '+' line repeating the header
    i1[10][2] = "+something else"
    i1[11][0] = i1[11][0].replace(" ", "\t")  # tab before the comment
    r1[12][0] = r1[12][0].replace(" ", "  ")  # two spaces
    r2[13][1] = "ACGTRYKM" + r2[13][1][8:]  # IUPAC codes BAM stores exactly
    i1[14][1] = i1[14][1][:8] + "\x01\x02"  # control characters
    r1[15][3] = r1[15][3][:-1] + "~"
    return triplet


def test_irregular_reads(tmp_path):
    paths = irregular_triplet().write(tmp_path / "in")
    result, _bam = round_trip(tmp_path, "10xV3", paths)
    assert result.short_r1_reads == 2


@pytest.mark.parametrize("block_reads", [1, 5, 7])
def test_irregular_reads_across_block_boundaries(tmp_path, monkeypatch, block_reads):
    monkeypatch.setattr(converter_module, "BLOCK_READS", block_reads)
    round_trip(tmp_path, "10xV3", irregular_triplet().write(tmp_path / "in"))


def test_r1_of_varying_lengths(tmp_path, monkeypatch):
    triplet = make_triplet(60, r1_length=40)
    for n, record in enumerate(triplet.reads["read1"]):
        keep = 28 + n % 13  # 28 (barcode+UMI only) to 40 bases
        record[1], record[3] = record[1][:keep], record[3][:keep]
    monkeypatch.setattr(converter_module, "BLOCK_READS", 25)
    _result, bam = round_trip(tmp_path, "10xV3", triplet.write(tmp_path / "in"))
    with pysam.AlignmentFile(str(bam), check_sq=False) as handle:
        rests = [record.get_tag("s1") if record.has_tag("s1") else "" for record in handle]
    assert rests == [record[1][28:] for record in triplet.reads["read1"]]


@pytest.mark.parametrize("chunk", [7, 61, 400])
def test_blocks_cut_short_by_bytes_at_other_reads_in_each_file(tmp_path, monkeypatch, chunk):
    """Long reads cut a block short by bytes; each file's block then ends at another read, and
    the files whose blocks went further give those reads back for the next block."""
    monkeypatch.setattr(fastq_stream, "MAX_TAKE_BYTES", 1)
    monkeypatch.setattr(fastq_stream, "MAX_CHUNK", chunk)
    triplet = irregular_triplet()
    paths = triplet.write(tmp_path / "in")
    paths["read1"].write_bytes(gzip.compress(triplet.text("read1")[:-1]))  # no final line break
    result, _bam = round_trip(tmp_path, "10xV3", paths)
    assert result.read_count == 24


def test_crlf_line_endings(tmp_path):
    paths = make_triplet(20).write(tmp_path / "in", eol="\r\n")
    round_trip(tmp_path, "10xV3", paths)


def test_mixed_line_endings_and_no_final_line_break(tmp_path):
    triplet = make_triplet(20)
    paths = triplet.write(tmp_path / "in")
    r2 = triplet.text("read2").replace(b"\n", b"\r\n", 9)[:-1]  # CRLF in the first reads only
    paths["read2"].write_bytes(gzip.compress(r2))
    paths["read1"].write_bytes(gzip.compress(triplet.text("read1")[:-1]))
    round_trip(tmp_path, "10xV3", paths)


def test_per_read_comments_in_the_fast_path(tmp_path, monkeypatch):
    triplet = make_triplet(40)
    for n, record in enumerate(triplet.reads["read2"]):
        if n % 3 == 0:
            record[0] = record[0][:-1] + "N"  # index read with an error, as bcl2fastq writes
    monkeypatch.setattr(converter_module, "BLOCK_READS", 16)
    round_trip(tmp_path, "10xV3", triplet.write(tmp_path / "in"))


def test_uncompressed_and_multi_member_gzip_inputs(tmp_path):
    triplet = make_triplet(30)
    paths = triplet.write(tmp_path / "in", gz=False)
    bgzipped = tmp_path / "in" / "s_L001_R2_001.fastq.gz"
    pysam.tabix_compress(str(paths["read2"]), str(bgzipped))
    paths["read2"] = bgzipped
    round_trip(tmp_path, "10xV3", paths)


def test_many_reads_over_several_blocks_with_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(converter_module, "BLOCK_READS", 300)
    paths = make_triplet(1000, r1_length=26, i1_length=8).write(tmp_path / "in")
    result, _bam = round_trip(tmp_path, "10xV2", paths, threads=2)
    assert result.read_count == 1000


def test_progress_adds_up_to_the_stored_inputs_then_to_the_rebuilt_text(tmp_path, monkeypatch):
    """One report per block of reads, from gzip, multi-member gzip and plain inputs alike."""
    monkeypatch.setattr(converter_module, "BLOCK_READS", 300)
    triplet = make_triplet(1000, r1_length=26, i1_length=8)
    paths = triplet.write(tmp_path / "gz")
    plain = triplet.write(tmp_path / "plain", gz=False)
    paths["index1"] = plain["index1"]
    paths["read2"] = tmp_path / "bgzipped_R2.fastq.gz"
    pysam.tabix_compress(str(plain["read2"]), str(paths["read2"]))
    converted: list[int] = []
    result = convert_fastqs(
        "10xV2",
        paths["read1"],
        paths["read2"],
        paths["index1"],
        tmp_path / "out.bam",
        progress=converted.append,
    )
    assert len(converted) == 4
    assert sum(converted) == sum(path.stat().st_size for path in paths.values())
    rebuilt: list[int] = []
    verify_bam(tmp_path / "out.bam", result, progress=rebuilt.append)
    assert len(rebuilt) >= 1
    assert sum(rebuilt) == sum(len(_decompressed(path)) for path in paths.values())


def test_real_lamanno_reads(tmp_path, lamanno_dir):
    paths = {"read1": lamanno_dir / "R1.fastq.gz", "read2": lamanno_dir / "R2.fastq.gz"}
    result, _bam = round_trip(tmp_path, "10xV2", paths, threads=2)
    assert result.read_count == 25_000


def test_rebuild_ignores_a_stored_file_name_with_a_path(tmp_path):
    paths = make_triplet(5).write(tmp_path / "in")
    bam, forged = tmp_path / "out.bam", tmp_path / "forged.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    with pysam.AlignmentFile(str(bam), check_sq=False) as source:
        header = source.header.to_dict()
        header["CO"] = [line.replace("s_L001_R1_001", "../../R1x") for line in header["CO"]]
        with pysam.AlignmentFile(str(forged), "wb", header=header) as target:
            for record in source:
                target.write(record)
    rebuilt = rebuild_fastqs(forged, tmp_path / "rebuilt")
    assert rebuilt["read1"] == tmp_path / "rebuilt" / "R1.fastq.gz"
    assert rebuilt["read2"] == tmp_path / "rebuilt" / paths["read2"].name
    assert sorted(p.name for p in (tmp_path / "rebuilt").iterdir()) == sorted(
        ["R1.fastq.gz", paths["read2"].name, paths["index1"].name]
    )


def test_empty_inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {}
    for index, label in (("read1", "R1"), ("read2", "R2"), ("index1", "I1")):
        paths[index] = folder / f"{label}.fastq.gz"
        paths[index].write_bytes(gzip.compress(b""))
    result, _bam = round_trip(tmp_path, "10xV3", paths)
    assert result.read_count == 0


@pytest.mark.parametrize("moved_to", ["R2 quality", "read name", "R1 bases"])
def test_a_tab_moved_out_of_the_header_tail(tmp_path, moved_to):
    """The file's default tail holds a tab; one read lacks it there and has one elsewhere. The
    block's tab count still matches, but the tab must not reach a field SAM text cannot hold."""
    triplet = make_triplet(4, comments=False, i1_length=None)
    for number, records in (("1", triplet.reads["read1"]), ("3", triplet.reads["read2"])):
        for record in records:
            record[0] += f" {number}:N:0\tx"
        records[1][0] = records[1][0].replace("\t", "")
    r1, r2 = triplet.reads["read1"][1], triplet.reads["read2"][1]
    if moved_to == "R2 quality":
        r2[3] = r2[3][:2] + "\t" + r2[3][3:]
        r1[0] = r1[0].replace("0x", "0\tx")
    elif moved_to == "read name":
        r1[0], r2[0] = (line.replace(":", "\t", 1) for line in (r1[0], r2[0]))
    else:
        r1[1] = r1[1][:3] + "\t" + r1[1][4:]
        r2[0] = r2[0].replace("0x", "0\tx")
    round_trip(tmp_path, "10xV3", triplet.write(tmp_path / "in"))


ODDITIES = [
    lambda rec, rng: rec.__setitem__(0, rec[0].replace(":N:", ":Y:")),
    lambda rec, rng: rec.__setitem__(0, rec[0].split(" ")[0]),
    lambda rec, rng: rec.__setitem__(0, rec[0] + " extra words"),
    lambda rec, rng: rec.__setitem__(2, "+" + rec[0][1:]),
    lambda rec, rng: rec.__setitem__(2, "+x"),
    lambda rec, rng: rec.__setitem__(1, rec[1].lower()),
    lambda rec, rng: (rec.__setitem__(1, rec[1][:5]), rec.__setitem__(3, rec[3][:5])),
    lambda rec, rng: (rec.__setitem__(1, rec[1] + "AC"), rec.__setitem__(3, rec[3] + "FF")),
    lambda rec, rng: rec.__setitem__(3, rec[3][:-1] + rng.choice(" ~!*")),
    lambda rec, rng: rec.__setitem__(0, rec[0] + "\r"),
]


@pytest.mark.parametrize("seed", range(12))
def test_random_mixtures_of_oddities(tmp_path, monkeypatch, seed):
    """Any mix of per-read deviations, in any file, at any block boundary, round-trips."""
    rng = random.Random(seed)
    monkeypatch.setattr(converter_module, "BLOCK_READS", rng.choice([1, 3, 8, 64]))
    triplet = make_triplet(40, r1_length=rng.choice([28, 40]), seed=seed)
    for records in triplet.reads.values():
        for record in rng.sample(records, 6):
            rng.choice(ODDITIES)(record, rng)
    round_trip(tmp_path, "10xV3", triplet.write(tmp_path / "in", eol=rng.choice(["\n", "\r\n"])))


def test_inputs_that_share_a_name_are_rebuilt_side_by_side(tmp_path):
    """R1 and R2 named alike in two folders, I1 as plain text beside a gzip of the same name:
    each comes back under its own R1_/R2_/I1_ prefix, none overwrites another."""
    triplet = make_triplet(20)
    written = triplet.write(tmp_path / "in")
    paths = {}
    for index, folder in (("read1", "a"), ("read2", "b"), ("index1", "b")):
        (tmp_path / folder).mkdir(exist_ok=True)
        name = "S1.fastq" if index == "index1" else "S1.fastq.gz"
        paths[index] = (tmp_path / folder / name).resolve()
        data = written[index].read_bytes()
        paths[index].write_bytes(gzip.decompress(data) if index == "index1" else data)
    bam = tmp_path / "out.bam"
    result = convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    verify_bam(bam, result)
    rebuilt = rebuild_fastqs(bam, tmp_path / "rebuilt")
    names = {index: path.name for index, path in rebuilt.items()}
    assert names == {
        "read1": "R1_S1.fastq.gz",
        "read2": "R2_S1.fastq.gz",
        "index1": "I1_S1.fastq.gz",
    }
    for index, path in paths.items():
        assert gzip.decompress(rebuilt[index].read_bytes()) == _decompressed(path), index
    assert sorted(p.name for p in (tmp_path / "rebuilt").iterdir()) == sorted(names.values())


def test_a_prefixed_name_that_is_another_inputs_name(tmp_path):
    """R1 named R2_x.fastq.gz, R2 and I1 both x.fastq.gz: R2's prefixed name is R1's own. Both
    were written to one file, which came out corrupt beside an error about a missing file."""
    triplet = make_triplet(20)
    written = triplet.write(tmp_path / "in")
    paths = {}
    for index, folder, name in (
        ("read1", "a", "R2_x.fastq.gz"),
        ("read2", "b", "x.fastq.gz"),
        ("index1", "c", "x.fastq.gz"),
    ):
        (tmp_path / folder).mkdir()
        paths[index] = tmp_path / folder / name
        paths[index].write_bytes(written[index].read_bytes())
    bam = tmp_path / "out.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    rebuilt = rebuild_fastqs(bam, tmp_path / "rebuilt")
    assert len(set(rebuilt.values())) == 3
    for index, path in paths.items():
        assert gzip.decompress(rebuilt[index].read_bytes()) == _decompressed(path), index


@pytest.mark.parametrize("odd", ["read1", "read2", "index1"])
def test_a_read_of_one_unstorable_byte_is_kept_whole(tmp_path, odd):
    """A base and quality that are one 0xFF byte each: neither SEQ/QUAL nor a Z tag can hold
    them, so the record goes whole into o1/o2/oi (it once matched the encoder's own marker)."""
    records = {"read1": b"@r\n" + b"A" * 28 + b"\n+\n" + b"I" * 28 + b"\n"}
    records |= {"read2": b"@r\nACGT\n+\nIIII\n", "index1": b"@r\nACGTACGT\n+\nIIIIIIII\n"}
    records[odd] = b"@r\n\xff\n+\n\xff\n"
    paths = {}
    for index, text in records.items():
        paths[index] = tmp_path / f"{index}.fastq"
        paths[index].write_bytes(text)
    round_trip(tmp_path, "10xV3", paths)


def test_a_last_record_without_bases_or_final_line_break(tmp_path):
    """'@r\\n\\n+\\n' at the end of a file: four lines, the last one empty and unterminated."""
    records = {
        "read1": b"@a\n"
        + b"A" * 28
        + b"\n+\n"
        + b"I" * 28
        + b"\n@b\n"
        + b"C" * 28
        + b"\n+\n"
        + b"I" * 28
        + b"\n",
        "read2": b"@a\nACGT\n+\nIIII\n@b\n\n+\n",
    }
    paths = {}
    for index, text in records.items():
        paths[index] = tmp_path / f"{index}.fastq"
        paths[index].write_bytes(text)
    result, _bam = round_trip(tmp_path, "10xV3", paths)
    assert result.read_count == 2
