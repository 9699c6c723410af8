"""The BAM itself: one unaligned record per read, 10x tags, header lines tools rely on."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pysam
import pytest

from hca_archive.cli import main
from hca_archive.convert import convert_fastqs, verify_bam
from tests.convert.fastq_text import make_triplet

SAMTOOLS = "/usr/bin/samtools"


def test_records_follow_the_10x_unaligned_layout(tmp_path):
    triplet = make_triplet(12, r1_length=26, i1_length=8)
    paths = triplet.write(tmp_path / "in")
    bam = tmp_path / "run.bam"
    convert_fastqs("10xV2", paths["read1"], paths["read2"], paths["index1"], bam)
    with pysam.AlignmentFile(str(bam), check_sq=False) as handle:
        header = handle.header.to_dict()
        records = list(handle)
    assert header["CO"][:3] == [
        "10x_bam_to_fastq:R1(CR:CY,UR:UY)",
        "10x_bam_to_fastq:R2(SEQ:QUAL)",
        "10x_bam_to_fastq:I1(BC:QT)",
    ]
    description = json.loads(header["CO"][3].removeprefix("hca-archive-fastq:"))
    assert description["version"] == 1
    assert description["files"]["read1"]["tail"] == " 1:N:0:GATCGATC"
    assert header["PG"][0]["ID"] == "hca-archive"
    assert len(records) == 12
    for record, r1, r2, i1 in zip(records, *triplet.reads.values(), strict=True):
        assert record.flag == 4
        assert record.reference_name is None and record.reference_start == -1
        assert record.mapping_quality == 0 and record.cigarstring is None
        assert record.template_length == 0
        assert record.query_name == r2[0][1:].split(" ")[0]
        assert record.query_sequence == r2[1]
        assert pysam.qualities_to_qualitystring(record.query_qualities) == r2[3]
        assert record.get_tags() == [
            ("CR", r1[1][:16]),
            ("UR", r1[1][16:26]),
            ("CY", r1[3][:16]),
            ("UY", r1[3][16:26]),
            ("BC", i1[1]),
            ("QT", i1[3]),
        ]


def test_differences_from_the_file_defaults_are_private_tags(tmp_path):
    triplet = make_triplet(3, r1_length=30)
    triplet.reads["read1"][1][0] = triplet.reads["read1"][1][0].replace(":N:", ":Y:")
    paths = triplet.write(tmp_path / "in")
    bam = tmp_path / "run.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    with pysam.AlignmentFile(str(bam), check_sq=False) as handle:
        records = list(handle)
    assert [r.has_tag("t1") for r in records] == [False, True, False]
    assert records[1].get_tag("t1") == " 1:Y:0:GATCGATC"
    assert records[0].get_tag("s1") == triplet.reads["read1"][0][1][28:]
    assert records[0].get_tag("q1") == triplet.reads["read1"][0][3][28:]


def test_samtools_reads_the_bam_cleanly(tmp_path):
    paths = make_triplet(25, i1_length=None).write(tmp_path / "in")
    bam = tmp_path / "run.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], None, bam, threads=2)
    subprocess.run([SAMTOOLS, "quickcheck", "-u", "-v", str(bam)], check=True)
    flagstat = subprocess.run(
        [SAMTOOLS, "flagstat", str(bam)], check=True, capture_output=True, text=True
    ).stdout
    assert flagstat.splitlines()[0].startswith("25 + 0 in total")
    view = subprocess.run([SAMTOOLS, "view", str(bam)], check=True, capture_output=True)
    assert view.stderr == b""
    assert len(view.stdout.splitlines()) == 25


def test_command_line_round_trip(tmp_path, capsys):
    paths = make_triplet(10).write(tmp_path / "in")
    bam = tmp_path / "run.bam"
    argv = ["convert", "--schema", "10xV3", "--r1", str(paths["read1"]), "--r2"]
    argv += [str(paths["read2"]), "--i1", str(paths["index1"]), "-o", str(bam), "--threads", "2"]
    assert main(argv) == 0
    assert main(["to-fastq", str(bam), "--outdir", str(tmp_path / "back")]) == 0
    for path in paths.values():
        rebuilt = gzip.decompress((tmp_path / "back" / path.name).read_bytes())
        assert rebuilt == gzip.decompress(path.read_bytes())
    assert "10 reads" in capsys.readouterr().err


def test_the_convert_command_loads_neither_pathlib_nor_typing(tmp_path):
    """Their imports cost ~15 ms of start-up, a tenth of converting a small run."""
    paths = make_triplet(10).write(tmp_path / "in")
    argv = ["convert", "--schema", "10xV3", "--r1", str(paths["read1"]), "--r2"]
    argv += [str(paths["read2"]), "--i1", str(paths["index1"]), "-o", str(tmp_path / "run.bam")]
    program = (
        "import sys; from hca_archive.cli import main; code = main(sys.argv[1:]); "
        "print(sorted({'pathlib', 'typing'} & set(sys.modules))); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, *argv], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "run.bam").stat().st_size > 0


def test_the_console_commands_leave_fast_with_their_output_whole(tmp_path):
    """convert and to-fastq skip the interpreter's teardown: what they print (to a pipe, so
    buffered) and their exit codes must still arrive."""
    paths = make_triplet(20).write(tmp_path / "in")
    bam, back = tmp_path / "run.bam", tmp_path / "back"
    command = [sys.executable, "-m", "hca_archive.cli"]
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    argv = ["convert", "--schema", "10xV3", "--r1", str(paths["read1"]), "--r2"]
    argv += [str(paths["read2"]), "--i1", str(paths["index1"]), "-o", str(bam)]
    converted = subprocess.run([*command, *argv], capture_output=True, text=True, env=buffered)
    assert (converted.returncode, converted.stdout) == (0, "")
    assert f"{bam}: 20 reads" in converted.stderr
    rebuilt = subprocess.run(
        [*command, "to-fastq", str(bam), "--outdir", str(back)],
        capture_output=True,
        text=True,
        env=buffered,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert sorted(rebuilt.stdout.split()) == sorted(str(back / p.name) for p in paths.values())
    for path in paths.values():
        original = gzip.decompress(path.read_bytes())
        assert gzip.decompress((back / path.name).read_bytes()) == original
    paths["read2"].write_bytes(b"")
    refused = subprocess.run([*command, *argv], capture_output=True, text=True, env=buffered)
    assert refused.returncode == 1
    assert "no matching read in R2" in refused.stderr


def test_command_line_reports_errors(tmp_path, capsys):
    paths = make_triplet(3).write(tmp_path / "in")
    paths["read2"].write_bytes(b"")
    argv = ["convert", "--schema", "10xV3", "--r1", str(paths["read1"]), "--r2"]
    argv += [str(paths["read2"]), "-o", str(tmp_path / "run.bam")]
    assert main(argv) == 1
    assert "no matching read in R2" in capsys.readouterr().err
    assert main(["to-fastq", str(paths["read1"]), "--outdir", str(tmp_path / "x")]) == 1


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("10xV3", "10xV9"), "unknown 10x schema '10xV9'"),
        (('"files":{', '"nofiles":{'), "malformed '@CO hca-archive-fastq:' header line"),
    ],
)
def test_to_fastq_names_a_header_it_cannot_use(tmp_path, capsys, edit, expected):
    paths = make_triplet(3).write(tmp_path / "in")
    bam = tmp_path / "run.bam"
    convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as source:
        header = source.header.to_dict()
        header["CO"] = [line.replace(*edit) for line in header["CO"]]
        edited = tmp_path / "edited.bam"
        with pysam.AlignmentFile(str(edited), "wb", header=header) as target:
            for record in source:
                target.write(record)
    assert main(["to-fastq", str(edited), "--outdir", str(tmp_path / "x")]) == 1
    assert expected in capsys.readouterr().err


def test_a_tab_before_every_comment_needs_no_per_read_tags(tmp_path):
    triplet = make_triplet(6)
    for records in triplet.reads.values():
        for record in records:
            record[0] = record[0].replace(" ", "\t")
    paths = triplet.write(tmp_path / "in")
    bam = tmp_path / "run.bam"
    result = convert_fastqs("10xV3", paths["read1"], paths["read2"], paths["index1"], bam)
    verify_bam(bam, result)
    with pysam.AlignmentFile(str(bam), check_sq=False) as handle:
        tag_names = {name for record in handle for name, _value in record.get_tags()}
    assert tag_names == {"CR", "UR", "CY", "UY", "BC", "QT"}
