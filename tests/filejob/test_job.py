"""JobRunner with one stand-in, DSP (its file lookup, and a tus server in the test), over moto S3
and with the real converter. run-job against the whole sandbox: test_run_job.py."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest

from hca_archive.convert.rebuild import read_layout
from hca_archive.filejob.job import JobRunner
from hca_archive.filejob.s3download import S3Downloader
from hca_archive.plan import MAX_NAME_BYTES, parse_plan
from tests.convert.fastq_text import make_triplet
from tests.filejob.tus_stub import CountingTokens, running_tus_stub

DSP = "http://127.0.0.1:9"
READS = 40
FASTQ_NAMES = {"read1": "R1.fastq.gz", "read2": "R2.fastq.gz", "index1": "I1.fastq.gz"}


class FakeDsp:
    def __init__(self, endpoint: str, files: dict[str, dict[str, Any]]) -> None:
        self.tus_endpoint = endpoint
        self.files = files

    def find_file(self, submission_id: str, name: str) -> dict[str, Any] | None:
        return self.files.get(name)

    def status(self, submission_id: str) -> str:
        return "Draft"


@pytest.fixture
def tus():
    with running_tus_stub() as stub:
        yield stub


def plan_job(
    moto_s3, prefix: str, *, conversion: bool = True, index_read: bool = True, plain: bool = False
):
    """A job converting R1, R2 (and I1) to a BAM, or uploading plain.fastq.gz; with ``plain``,
    one converting and uploading plain.fastq.gz beside the BAM."""
    url = f"s3://{moto_s3.bucket}/{prefix}"
    job: dict[str, Any] = {
        "dsp_api_url": DSP,
        "submission_url": f"{DSP}/api/submissions/sub-1",
        "manifest_id": "manifest-1",
    }
    if conversion:
        inputs = [
            {"name": "R1.fastq.gz", "read_index": "read1", "cloud_url": f"{url}/R1.fastq.gz"},
            {"name": "R2.fastq.gz", "read_index": "read2", "cloud_url": f"{url}/R2.fastq.gz"},
        ]
        if index_read:
            inputs.append(
                {"name": "I1.fastq.gz", "read_index": "index1", "cloud_url": f"{url}/I1.fastq.gz"}
            )
        job["files"] = [{"name": "manifest-1_1.bam"}]
        if plain:
            job["files"].append(
                {
                    "name": "plain.fastq.gz",
                    "read_index": "read1",
                    "cloud_url": f"{url}/plain.fastq.gz",
                }
            )
        job["conversion"] = {"output_name": "manifest-1_1.bam", "schema": "10xV2", "inputs": inputs}
    else:
        job["files"] = [
            {"name": "plain.fastq.gz", "read_index": "read1", "cloud_url": f"{url}/plain.fastq.gz"}
        ]
    (parsed,) = parse_plan({"jobs": [job]}).jobs
    return parsed


def put_inputs(moto_s3, prefix: str, names: list[str]) -> dict[str, bytes]:
    client = moto_s3.client()
    contents = {}
    for position, name in enumerate(names):
        contents[name] = f"@{name}\n".encode() * (1000 + position)
        client.put_object(Bucket=moto_s3.bucket, Key=f"{prefix}/{name}", Body=contents[name])
    return contents


def put_fastqs(moto_s3, prefix: str, tmp_path: Path, *, index_read: bool = True) -> dict[str, Path]:
    """A 10x triplet (or pair) of gzip FASTQ files in S3; returns the local originals."""
    triplet = make_triplet(READS, r1_length=26, i1_length=8 if index_read else None)
    local = triplet.write(tmp_path / "originals" / prefix)
    client = moto_s3.client()
    for index, path in local.items():
        key = f"{prefix}/{FASTQ_NAMES[index]}"
        client.put_object(Bucket=moto_s3.bucket, Key=key, Body=path.read_bytes())
    return local


def runner(moto_s3, dsp: FakeDsp) -> JobRunner:
    return JobRunner(
        S3Downloader(moto_s3.client(), part_size=4096),
        CountingTokens(),
        chunk_size=5000,
        dsp_client=lambda url, tokens: dsp,
    )


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_a_conversion_job_downloads_converts_verifies_and_uploads(moto_s3, tus, tmp_path):
    originals = put_fastqs(moto_s3, "conv", tmp_path)
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(
        plan_job(moto_s3, "conv"), tmp_path / "work"
    )

    assert outcome.status == "succeeded", outcome.error
    job_dir = tmp_path.resolve() / "work" / "job-0"
    for index, path in originals.items():
        assert (job_dir / "inputs" / FASTQ_NAMES[index]).read_bytes() == path.read_bytes()
    bam = (job_dir / "output" / "manifest-1_1.bam").read_bytes()
    assert bam[:4] == b"\x1f\x8b\x08\x04"  # BGZF
    (upload,) = tus.uploads.values()
    assert bytes(upload.data) == bam
    assert upload.metadata["name"] == "manifest-1_1.bam"
    assert upload.metadata["submissionID"] == "sub-1"
    assert outcome.to_dict()["files"] == [
        {
            "name": "manifest-1_1.bam",
            "bytes": len(bam),
            "md5": md5(bam),
            "reads": READS,
            "upload": "uploaded",
        }
    ]
    assert all(outcome.seconds[step] > 0 for step in ("download", "convert", "verify", "upload"))
    assert [item["verified"] for item in outcome.inputs] == ["ETag = MD5 of the content"] * 3


def test_a_job_without_index_reads_converts_the_pair(moto_s3, tus, tmp_path):
    put_fastqs(moto_s3, "noi1", tmp_path, index_read=False)
    job = plan_job(moto_s3, "noi1", index_read=False)
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path / "work")
    assert outcome.status == "succeeded", outcome.error
    bam = tmp_path / "work" / "job-0" / "output" / "manifest-1_1.bam"
    assert set(read_layout(bam).files) == {"read1", "read2"}
    assert outcome.files[0]["reads"] == READS


def test_names_as_long_as_the_plan_allows_fit_the_jobs_own_files(moto_s3, tus, tmp_path):
    # The job keeps files named after them with suffixes (.part.json, .verified.json,
    # .tus.json, and temporary names around those): they must stay within 255 bytes.
    names = {index: f"{index[-1] * (MAX_NAME_BYTES - 9)}.fastq.gz" for index in ("read1", "read2")}
    output = "b" * (MAX_NAME_BYTES - 4) + ".bam"
    local = put_fastqs(moto_s3, "fastqs", tmp_path, index_read=False)
    for index, name in names.items():
        moto_s3.client().put_object(
            Bucket=moto_s3.bucket, Key=f"long/{name}", Body=local[index].read_bytes()
        )
    url = f"s3://{moto_s3.bucket}/long"
    inputs = [
        {"name": name, "read_index": index, "cloud_url": f"{url}/{name}"}
        for index, name in names.items()
    ]
    job = {
        "dsp_api_url": DSP,
        "submission_url": f"{DSP}/api/submissions/sub-1",
        "manifest_id": "manifest-1",
        "files": [{"name": output}],
        "conversion": {"output_name": output, "schema": "10xV2", "inputs": inputs},
    }
    (parsed,) = parse_plan({"jobs": [job]}).jobs
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(parsed, tmp_path / "work")
    assert outcome.status == "succeeded", outcome.error
    (upload,) = tus.uploads.values()
    assert upload.metadata["name"] == output


def test_a_plain_job_uploads_the_file_as_it_is_and_not_twice(moto_s3, tus, tmp_path):
    contents = put_inputs(moto_s3, "plain", ["plain.fastq.gz"])
    job = plan_job(moto_s3, "plain", conversion=False)
    first = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path)
    assert first.status == "succeeded", first.error
    assert first.files[0]["md5"] == md5(contents["plain.fastq.gz"])
    assert first.files[0]["reads"] is None

    size = len(contents["plain.fastq.gz"])
    on_dsp = FakeDsp(tus.endpoint, {"plain.fastq.gz": {"totalSize": size, "uploadedSize": size}})
    second = runner(moto_s3, on_dsp).run(job, tmp_path)
    assert second.files[0]["upload"] == "already-on-dsp"
    assert second.files[0]["md5"] == first.files[0]["md5"]  # S3's ETag: DSP gave no checksum
    assert second.already_archived and second.inputs == []  # found on DSP before downloading
    assert len(tus.uploads) == 1


def test_a_job_whose_bam_dsp_holds_downloads_and_uploads_only_its_other_file(
    moto_s3, tus, tmp_path
):
    """The BAM is on DSP, the plain file beside it is not: the job fetches and uploads that file
    alone, converts nothing, and is not reported as already archived."""
    put_fastqs(moto_s3, "half", tmp_path)
    contents = put_inputs(moto_s3, "half", ["plain.fastq.gz"])
    dsp = FakeDsp(tus.endpoint, {"manifest-1_1.bam": {"totalSize": 99, "uploadedSize": 99}})
    outcome = runner(moto_s3, dsp).run(plan_job(moto_s3, "half", plain=True), tmp_path)
    assert outcome.status == "succeeded", outcome.error
    assert not outcome.already_archived
    assert [item["name"] for item in outcome.inputs] == ["plain.fastq.gz"]
    assert outcome.seconds["convert"] == 0
    assert [(item["name"], item["upload"]) for item in outcome.files] == [
        ("manifest-1_1.bam", "already-on-dsp"),
        ("plain.fastq.gz", "uploaded"),
    ]
    (upload,) = tus.uploads.values()
    assert bytes(upload.data) == contents["plain.fastq.gz"]


def test_a_file_dsp_shows_only_a_size_for_is_uploaded(moto_s3, tus, tmp_path):
    """A record with the right size but neither ``uploadedSize`` nor the READY_FOR_ARCHIVE of a
    checked file does not show that DSP has the bytes (services.md): the file is uploaded."""
    contents = put_inputs(moto_s3, "sizeonly", ["plain.fastq.gz"])
    size = len(contents["plain.fastq.gz"])
    job = plan_job(moto_s3, "sizeonly", conversion=False)
    dsp = FakeDsp(tus.endpoint, {"plain.fastq.gz": {"totalSize": size, "status": "UPLOADING"}})
    outcome = runner(moto_s3, dsp).run(job, tmp_path)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.files[0]["upload"] == "uploaded"
    assert len(tus.uploads) == 1


def test_a_bam_whose_copy_failed_dsps_check_is_converted_and_uploaded_again(moto_s3, tus, tmp_path):
    """All bytes on DSP but its content check failed (status ERROR): before converting there is
    no md5 to compare with, so that copy does not count as held (nor the job as archived)."""
    put_fastqs(moto_s3, "failed-check", tmp_path)
    broken = {"totalSize": 99, "uploadedSize": 99, "checksum": "f" * 32, "status": "ERROR"}
    dsp = FakeDsp(tus.endpoint, {"manifest-1_1.bam": broken})
    outcome = runner(moto_s3, dsp).run(plan_job(moto_s3, "failed-check"), tmp_path)
    assert outcome.status == "succeeded", outcome.error
    assert not outcome.already_archived
    assert outcome.files[0]["upload"] == "uploaded"
    assert len(tus.uploads) == 1


def test_a_file_on_dsp_with_another_size_is_uploaded_again(moto_s3, tus, tmp_path):
    put_inputs(moto_s3, "resize", ["plain.fastq.gz"])
    job = plan_job(moto_s3, "resize", conversion=False)
    dsp = FakeDsp(tus.endpoint, {"plain.fastq.gz": {"totalSize": 7}})
    outcome = runner(moto_s3, dsp).run(job, tmp_path)
    assert outcome.files[0]["upload"] == "uploaded"
    assert len(tus.uploads) == 1


def test_a_conversion_error_fails_the_job_naming_it_and_uploads_nothing(moto_s3, tus, tmp_path):
    put_fastqs(moto_s3, "bad", tmp_path)
    one_read_short = make_triplet(READS - 1, r1_length=26, i1_length=8).text("read2")
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key="bad/R2.fastq.gz", Body=one_read_short)
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(plan_job(moto_s3, "bad"), tmp_path)
    assert outcome.status == "failed"
    assert outcome.error.startswith("job 0 (manifest-1/manifest-1_1.bam): convert: ")
    assert f"read {READS}: no matching read in R2" in outcome.error, outcome.error
    assert tus.uploads == {}
    assert outcome.files == []


def test_a_missing_input_fails_the_download_step(moto_s3, tus, tmp_path):
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(plan_job(moto_s3, "absent"), tmp_path)
    assert outcome.status == "failed"
    assert "download: s3://hca-test-area/absent/R1.fastq.gz: no such file in S3" in outcome.error
    assert outcome.seconds["convert"] == 0
    assert not (tmp_path / "job-0" / "output" / "manifest-1_1.bam").exists()


def test_a_dsp_client_that_cannot_be_made_fails_the_check_step(moto_s3, tus, tmp_path):
    def unusable(url: str, tokens: object) -> FakeDsp:
        raise ValueError(f"DSP URL must be http(s)://host[/api/], got {url!r}")

    job_runner = JobRunner(S3Downloader(moto_s3.client()), CountingTokens(), dsp_client=unusable)
    outcome = job_runner.run(plan_job(moto_s3, "conv"), tmp_path)
    assert outcome.status == "failed"
    assert outcome.error.startswith("job 0 (manifest-1/manifest-1_1.bam): check: DSP URL must")
    assert outcome.seconds["download"] == 0


def test_a_rerun_reuses_the_verified_bam_unless_it_changed(moto_s3, tus, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="hca_archive.filejob.job")
    put_fastqs(moto_s3, "rerun", tmp_path)
    job = plan_job(moto_s3, "rerun")
    work = tmp_path / "work"
    bam = work / "job-0" / "output" / "manifest-1_1.bam"
    first = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, work)
    converted_at = bam.stat().st_mtime_ns
    again = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, work)
    assert again.status == "succeeded", again.error
    assert again.seconds["convert"] == 0 and bam.stat().st_mtime_ns == converted_at
    assert "reusing manifest-1_1.bam, converted and verified earlier" in caplog.text
    assert again.files[0]["md5"] == first.files[0]["md5"]
    assert again.files[0]["reads"] == READS

    bam.write_bytes(bam.read_bytes() + b"!")
    third = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, work)
    assert third.status == "succeeded", third.error
    assert third.seconds["convert"] > 0
    assert "differs from the BAM verified earlier; converting again" in caplog.text
    assert third.files[0]["md5"] == first.files[0]["md5"]
