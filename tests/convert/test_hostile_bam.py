"""to-fastq of a BAM from anywhere: a header or record `convert` cannot have written is refused,
naming the BAM and the record, and leaves no FASTQ file behind (none outside --outdir ever)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pysam
import pytest

from hca_archive.cli import main
from hca_archive.convert import convert_fastqs
from hca_archive.convert.layout import decode_block
from hca_archive.convert.rebuild import read_layout
from hca_archive.convert.sam_reader import sam_lines
from tests.convert.fastq_text import make_triplet

PREFIX = "hca-archive-fastq:"
EditHeader = Callable[[dict], None]
EditRecord = Callable[[pysam.AlignedSegment], None]


@pytest.fixture(scope="module")
def bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    paths = make_triplet(5).write(folder / "in")
    path = folder / "run.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], path)
    return path


def forge(
    source: Path,
    target: Path,
    header: EditHeader | None = None,
    record: EditRecord | None = None,
    at: int | None = 2,
) -> Path:
    """A copy of `source` with its hca-archive-fastq JSON or its record `at` (from 0; None:
    every record) edited."""
    with pysam.AlignmentFile(str(source), "rb", check_sq=False) as handle:
        edited = handle.header.to_dict()
        if header is not None:
            comments = edited["CO"]
            (i,) = (i for i, line in enumerate(comments) if line.startswith(PREFIX))
            data = json.loads(comments[i][len(PREFIX) :])
            header(data)
            comments[i] = PREFIX + json.dumps(data)
        with pysam.AlignmentFile(str(target), "wb", header=edited) as out:
            for n, read in enumerate(handle):
                if record is not None and at in (n, None):
                    record(read)
                out.write(read)
    return target


def refused(bam: Path, outdir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The error to-fastq gives; nothing may be left in (or beside) the output folder."""
    before = set(outdir.parent.iterdir())
    assert main(["to-fastq", str(bam), "--outdir", str(outdir)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no file named as written
    assert captured.err.startswith(f"hca-archive to-fastq: {bam}: ")
    assert not outdir.exists() or list(outdir.iterdir()) == []
    assert set(outdir.parent.iterdir()) - before <= {outdir}
    return captured.err


def _set(index: str, **values: object) -> EditHeader:
    return lambda data: data["files"][index].update(values)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_set("read1", name=5), "files.read1: name, tail and eol must be strings"),
        (_set("read1", name=None), "files.read1: name, tail and eol must be strings"),
        (_set("read2", tail=7), "files.read2: name, tail and eol must be strings"),
        (_set("read2", plus_repeats_header="no"), "plus_repeats_header must be true or false"),
        # a tail that would add a forged record after every read's header
        (_set("read1", tail=" 1\n@forged\nA\n+\nI"), "would break the FASTQ lines"),
        (_set("index1", eol="\r"), "files.index1: tail '"),
        (lambda data: data["files"].pop("read2"), "read1 or read2 missing"),
        (lambda data: data.update(files={}), "files []: read1 or read2 missing"),
        (lambda data: data["files"].update(read1=["R1.fastq.gz"]), "TypeError"),
        (lambda data: data.update(files="read1read2"), "TypeError"),
        (lambda data: data.pop("schema"), "KeyError('schema')"),
    ],
)
def test_a_header_convert_cannot_have_written_is_refused(
    bam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: EditHeader, expected: str
) -> None:
    """Before: a name that is not a string was a traceback, a tail with line breaks put forged
    reads into every file, a layout without R2 wrote R1 alone, and no files at all said
    'max_workers must be greater than 0'."""
    forged = forge(bam, tmp_path / "forged.bam", header=edit)
    error = refused(forged, tmp_path / "out", capsys)
    assert "malformed '@CO hca-archive-fastq:' header line: " in error
    assert expected in error


def test_a_header_that_is_not_json_says_so(
    bam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
        header = handle.header.to_dict()
        header["CO"] = [c[:-2] if c.startswith(PREFIX) else c for c in header["CO"]]
        forged = tmp_path / "forged.bam"
        with pysam.AlignmentFile(str(forged), "wb", header=header) as out:
            for read in handle:
                out.write(read)
    error = refused(forged, tmp_path / "out", capsys)
    assert "'@CO hca-archive-fastq:' header line is not JSON: " in error


@pytest.mark.parametrize(
    "name",
    ["../../R1.fastq.gz", "/tmp/R1.fastq.gz", "..", "a\\b.fastq.gz", "R1\n.fastq.gz", "x\x1b[2J"],
)
def test_a_file_name_with_a_path_or_not_printable_is_not_used(
    bam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Nothing written outside --outdir; a line break would split the list the command prints."""
    forged = forge(bam, tmp_path / "forged.bam", header=_set("read1", name=name))
    outdir = tmp_path / "deep" / "out"
    assert main(["to-fastq", str(forged), "--outdir", str(outdir)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(outdir / "R1.fastq.gz")
    assert {path.parent for path in map(Path, printed)} == {outdir}
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        ["forged.bam", *(Path(line).name for line in printed)]
    )


def _hex(text: bytes) -> EditRecord:
    return lambda read: read.set_tag("o1", text.hex(), "H")


def _r1_of(read: pysam.AlignedSegment, name: str | None = None, final: bytes = b"\n") -> bytes:
    seq, qual = ("".join(read.get_tag(t) for t in tags) for tags in (("CR", "UR"), ("CY", "UY")))
    return f"@{name or read.query_name} 1:N:0:X\n{seq}\n+\n{qual}".encode() + final


def _drop(*tags: str) -> EditRecord:
    def edit(read: pysam.AlignedSegment) -> None:
        for tag in tags:
            read.set_tag(tag, None)

    return edit


def _without_qualities(read: pysam.AlignedSegment) -> None:
    read.query_sequence = read.query_sequence  # pysam drops QUAL with a new SEQ


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_drop("CR"), "R1 has neither o1 nor CR"),
        (_drop("UR", "UY"), "R1 has neither o1 nor UR, UY"),
        (_drop("BC", "QT"), "I1 has neither oi nor BC, QT"),
        (lambda read: read.set_tag("CR", 12345, "i"), "tag CR is of type i, not Z"),
        (lambda read: read.set_tag("QT", 1.5, "f"), "tag QT is of type f, not Z"),
        (lambda read: read.set_tag("o1", b"@a\nA\n+\nI\n".hex(), "Z"), "tag o1 is of type Z"),
        (lambda read: read.set_tag("o1", "4061", "H"), "o1 is not one FASTQ record"),
        (lambda read: read.set_tag("o1", "40610", "H"), "o1 is not hexadecimal text"),
        (lambda read: read.set_tag("o2", "zz", "H"), "o2 is not hexadecimal text"),
        # an empty original text dropped the read from R1 only; two records added one
        (_hex(b""), "o1 is not one FASTQ record of this read: ''"),
        (_hex(b"@a\nA\n+\nI\n@b\nA\n+\nI\n"), "o1 is not one FASTQ record of this read"),
        (lambda read: _hex(_r1_of(read, "another"))(read), "o1 is not one FASTQ record"),
        (lambda read: _hex(_r1_of(read)[:-3] + b"\n")(read), "o1 is not one FASTQ record"),
        (lambda read: read.set_tag("s1", "ACGT"), "R1 has 32 bases but 28 qualities"),
        (lambda read: read.set_tag("QT", "F"), "I1 has 10 bases but 1 qualities"),
        (_without_qualities, "R2 has 91 bases but 0 qualities"),
        (lambda read: read.set_tag("CR", "AC\nGT"), "R1 has 14 bases but 28 qualities"),
    ],
)
def test_a_record_convert_cannot_have_written_is_refused_naming_it(
    bam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: EditRecord, expected: str
) -> None:
    """Before: a missing or mistyped tag rebuilt a wrong read without a word (an R1 of ''
    or '12345...'), an original text that is not one record dropped or added reads in one file
    only, and odd hex was named without its record."""
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as handle:
        name = list(handle)[2].query_name
    forged = forge(bam, tmp_path / "forged.bam", record=edit)
    error = refused(forged, tmp_path / "out", capsys)
    assert f": record 3 (read {name!r}): {expected}" in error


def test_only_the_last_record_may_lack_a_final_line_break(
    bam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mid-file, it would glue two reads together on one line."""
    forged = forge(
        bam, tmp_path / "forged.bam", record=lambda read: _hex(_r1_of(read, final=b""))(read)
    )
    error = refused(forged, tmp_path / "out", capsys)
    assert ": record 4 (read " in error
    assert "follows a record without a final line break in R1" in error
    last = forge(bam, tmp_path / "last.bam", record=lambda r: _hex(_r1_of(r, final=b""))(r), at=4)
    assert main(["to-fastq", str(last), "--outdir", str(tmp_path / "last")]) == 0


def test_a_tag_every_record_lacks_is_refused_as_for_one_record(
    bam: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records all alike are decoded in bulk: there too, R1 without its barcode is no R1."""
    forged = forge(bam, tmp_path / "forged.bam", record=_drop("CR", "CY"), at=None)
    error = refused(forged, tmp_path / "out", capsys)
    assert ": record 1 (read " in error
    assert "R1 has neither o1 nor CR, CY" in error


@pytest.mark.parametrize(
    ("tag", "extra"), [("CR", b"\tCR:Z:" + b"A" * 16), ("t1", b"\tt1:Z:x" * 2)], ids=["CR", "t1"]
)
@pytest.mark.parametrize("every_record", [False, True], ids=["one record", "every record"])
def test_a_tag_given_twice_is_refused(
    bam: Path, tag: str, extra: bytes, every_record: bool
) -> None:
    """Which of the two a reader takes is anyone's guess: neither is trusted, also when every
    record is alike (decoded in bulk) or the tag is one only some reads carry (a header tail)."""
    [lines] = list(sam_lines(bam))
    edited = [n for n in range(len(lines)) if every_record or n == 2]
    for n in edited:
        lines[n] += extra
    with pytest.raises(
        ValueError, match=rf"^record {edited[0] + 1} \(read '.+'\): tag {tag} twice$"
    ):
        decode_block(read_layout(bam), lines)


def test_a_record_after_one_without_a_final_line_break_is_refused_in_a_later_block(
    bam: Path, tmp_path: Path
) -> None:
    """The unended record may end a block: the next block is still checked record by record."""
    forged = forge(bam, tmp_path / "forged.bam", record=lambda r: _hex(_r1_of(r, final=b""))(r))
    [lines] = list(sam_lines(forged))
    layout = read_layout(forged)
    unended: set[str] = set()  # as fastq_blocks keeps it from block to block
    decode_block(layout, lines[:3], 1, unended)
    with pytest.raises(ValueError, match=r"^record 4 .*: follows a record without a final line"):
        decode_block(layout, lines[3:], 4, unended)


def test_records_are_numbered_across_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SAM text comes in blocks of 512 KiB: the number is the record's in the BAM."""
    paths = make_triplet(6000).write(tmp_path / "in")
    big = tmp_path / "big.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], big)
    forged = forge(big, tmp_path / "forged.bam", record=_drop("CY"), at=5432)
    error = refused(forged, tmp_path / "out", capsys)
    assert ": record 5433 (read 'A00123:" in error
    assert "R1 has neither o1 nor CY" in error


def test_a_bam_not_written_by_convert_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.bam"
    header = {"HD": {"VN": "1.6"}, "CO": ["10x_bam_to_fastq:R2(SEQ:QUAL)"]}
    with pysam.AlignmentFile(str(plain), "wb", header=header) as out:
        read = pysam.AlignedSegment(out.header)
        read.query_name, read.flag = "r1", 4
        read.query_sequence, read.query_qualities = "ACGT", pysam.qualitystring_to_array("IIII")
        out.write(read)
    error = refused(plain, tmp_path / "out", capsys)
    assert "no '@CO hca-archive-fastq:' header line: not written by hca-archive convert" in error
