"""JobRunner over moto S3 and the in-test tus server, with a stand-in DSP and converter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hca_archive import convert
from hca_archive.filejob.job import JobRunner
from hca_archive.filejob.s3download import S3Downloader
from hca_archive.plan import parse_plan
from tests.filejob.tus_stub import CountingTokens, running_tus_stub

pytestmark = pytest.mark.integration

DSP = "http://127.0.0.1:9"


class FakeDsp:
    def __init__(self, endpoint: str, files: dict[str, dict[str, Any]]) -> None:
        self.tus_endpoint = endpoint
        self.files = files

    def find_file(self, submission_id: str, name: str) -> dict[str, Any] | None:
        return self.files.get(name)


@dataclass
class FakeConversion:
    read_count: int
    inputs: dict[str, convert.FastqDigest]


class FakeConverter:
    """Writes the concatenated inputs as the "BAM"; can be told to fail like the real one."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.verified: list[Path] = []
        self.error = error

    def convert_fastqs(self, schema, r1, r2, i1, out, threads=1, progress=None):
        self.calls.append((schema, r1, r2, i1, out, threads))
        if self.error is not None:
            raise self.error
        out.write_bytes(b"".join(path.read_bytes() for path in (r1, r2, i1) if path))
        inputs = {"read1": r1, "read2": r2}
        return FakeConversion(
            3,
            {
                index: convert.FastqDigest(path, "", len(path.read_bytes()), 3)
                for index, path in inputs.items()
            },
        )

    def verify_bam(self, bam, result, progress=None):
        self.verified.append(bam)


@pytest.fixture
def converter(monkeypatch):
    fake = FakeConverter()
    monkeypatch.setattr(convert, "convert_fastqs", fake.convert_fastqs, raising=False)
    monkeypatch.setattr(convert, "verify_bam", fake.verify_bam, raising=False)
    return fake


@pytest.fixture
def tus():
    with running_tus_stub() as stub:
        yield stub


def plan_job(moto_s3, prefix: str, *, conversion: bool = True, index_read: bool = True):
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


def runner(moto_s3, dsp: FakeDsp) -> JobRunner:
    return JobRunner(
        S3Downloader(moto_s3.client(), part_size=4096),
        CountingTokens(),
        chunk_size=5000,
        dsp_client=lambda url, tokens: dsp,
    )


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_a_conversion_job_downloads_converts_verifies_and_uploads(
    moto_s3, tus, converter, tmp_path
):
    contents = put_inputs(moto_s3, "conv", ["R1.fastq.gz", "R2.fastq.gz", "I1.fastq.gz"])
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(plan_job(moto_s3, "conv"), tmp_path)

    assert outcome.status == "succeeded", outcome.error
    schema, r1, r2, i1, out, _ = converter.calls[0]
    assert r2.name == "R2.fastq.gz"
    assert (schema, r1.read_bytes(), i1.name) == ("10xV2", contents["R1.fastq.gz"], "I1.fastq.gz")
    assert r1.parent == tmp_path.resolve() / "job-0" / "inputs"
    assert converter.verified == [out]
    bam = b"".join(contents[name] for name in ("R1.fastq.gz", "R2.fastq.gz", "I1.fastq.gz"))
    (upload,) = tus.uploads.values()
    assert bytes(upload.data) == bam
    assert upload.metadata["name"] == "manifest-1_1.bam"
    assert upload.metadata["submissionID"] == "sub-1"
    assert outcome.to_dict()["files"] == [
        {
            "name": "manifest-1_1.bam",
            "bytes": len(bam),
            "md5": md5(bam),
            "reads": 3,
            "upload": "uploaded",
        }
    ]
    assert set(outcome.seconds) == {"download", "convert", "verify", "upload"}
    assert [item["verified"] for item in outcome.inputs] == ["ETag = MD5 of the content"] * 3


def test_a_job_without_index_reads_passes_none_for_i1(moto_s3, tus, converter, tmp_path):
    put_inputs(moto_s3, "noi1", ["R1.fastq.gz", "R2.fastq.gz"])
    job = plan_job(moto_s3, "noi1", index_read=False)
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path)
    assert outcome.status == "succeeded", outcome.error
    assert converter.calls[0][3] is None


def test_a_plain_job_uploads_the_file_as_it_is_and_not_twice(moto_s3, tus, tmp_path):
    contents = put_inputs(moto_s3, "plain", ["plain.fastq.gz"])
    job = plan_job(moto_s3, "plain", conversion=False)
    first = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path)
    assert first.status == "succeeded", first.error
    assert first.files[0]["md5"] == md5(contents["plain.fastq.gz"])
    assert first.files[0]["reads"] is None

    size = len(contents["plain.fastq.gz"])
    on_dsp = FakeDsp(tus.endpoint, {"plain.fastq.gz": {"totalSize": size}})
    second = runner(moto_s3, on_dsp).run(job, tmp_path)
    assert second.files[0]["upload"] == "already-on-dsp"
    assert second.inputs[0]["reused"] is True
    assert len(tus.uploads) == 1


def test_a_file_on_dsp_with_another_size_is_uploaded_again(moto_s3, tus, tmp_path):
    put_inputs(moto_s3, "resize", ["plain.fastq.gz"])
    job = plan_job(moto_s3, "resize", conversion=False)
    dsp = FakeDsp(tus.endpoint, {"plain.fastq.gz": {"totalSize": 7}})
    outcome = runner(moto_s3, dsp).run(job, tmp_path)
    assert outcome.files[0]["upload"] == "uploaded"
    assert len(tus.uploads) == 1


def test_a_conversion_error_fails_the_job_naming_it_and_uploads_nothing(
    moto_s3, tus, converter, tmp_path
):
    put_inputs(moto_s3, "bad", ["R1.fastq.gz", "R2.fastq.gz", "I1.fastq.gz"])
    converter.error = ValueError("R2.fastq.gz: read 17: name differs from R1.fastq.gz")
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(plan_job(moto_s3, "bad"), tmp_path)
    assert outcome.status == "failed"
    assert outcome.error == (
        "job 0 (manifest-1/manifest-1_1.bam): convert: "
        "R2.fastq.gz: read 17: name differs from R1.fastq.gz"
    )
    assert tus.uploads == {}
    assert outcome.files == []


def test_a_missing_input_fails_the_download_step(moto_s3, tus, converter, tmp_path):
    outcome = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(plan_job(moto_s3, "absent"), tmp_path)
    assert outcome.status == "failed"
    assert "download: s3://hca-test-area/absent/R1.fastq.gz: head_object failed" in outcome.error
    assert converter.calls == []


def test_a_rerun_reuses_the_verified_bam_unless_it_changed(moto_s3, tus, converter, tmp_path):
    put_inputs(moto_s3, "rerun", ["R1.fastq.gz", "R2.fastq.gz", "I1.fastq.gz"])
    job = plan_job(moto_s3, "rerun")
    first = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path)
    again = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path)
    assert again.status == "succeeded", again.error
    assert len(converter.calls) == len(converter.verified) == 1
    assert again.files[0]["md5"] == first.files[0]["md5"]
    assert again.files[0]["reads"] == 3

    bam = converter.calls[0][4]
    bam.write_bytes(bam.read_bytes() + b"!")
    third = runner(moto_s3, FakeDsp(tus.endpoint, {})).run(job, tmp_path)
    assert third.status == "succeeded", third.error
    assert len(converter.calls) == len(converter.verified) == 2
    assert third.files[0]["md5"] == first.files[0]["md5"]
