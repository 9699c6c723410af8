"""Plain-``requests`` helpers for the sandbox tests: archiving steps, a tus upload, a BAM."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pysam
import requests

from tests.fixtures.sandbox import SandboxInfo

T = TypeVar("T")
TUS = {"Tus-Resumable": "1.0.0"}


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def archiver(sandbox: SandboxInfo, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Api-Key": sandbox.archiver_api_key, **kwargs.pop("headers", {})}
    return requests.request(
        method, sandbox.archiver_url + path, headers=headers, timeout=10, **kwargs
    )


def dsp(sandbox: SandboxInfo, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {sandbox.token()}", **kwargs.pop("headers", {})}
    return requests.request(method, sandbox.dsp_url + path, headers=headers, timeout=10, **kwargs)


def trigger_and_wait(sandbox: SandboxInfo, submission_uuid: str) -> dict[str, Any]:
    """Trigger archiving and wait for the archive submission record."""
    response = archiver(
        sandbox, "POST", "/archiveSubmissions", json={"submission_uuid": submission_uuid}
    )
    assert response.status_code == 200, response.text

    return wait_for("the archive submission record", lambda: latest(sandbox, submission_uuid))


def latest(sandbox: SandboxInfo, submission_uuid: str) -> dict[str, Any] | None:
    """The newest archive submission record, or None while there is none."""
    answer = archiver(sandbox, "GET", f"/latestArchiveSubmission/{submission_uuid}")
    return answer.json() if answer.status_code == 200 else None


def tus_metadata(**values: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items()
    )


def tus_create(
    sandbox: SandboxInfo, submission_id: str, name: str, length: int, token: str | None = None
) -> requests.Response:
    metadata = tus_metadata(
        jwtToken=token or sandbox.token(), submissionID=submission_id, name=name
    )
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata}
    return requests.post(f"{sandbox.dsp_url}/files/", headers=headers, timeout=10)


def tus_patch(location: str, offset: int, data: bytes) -> requests.Response:
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    return requests.patch(location, data=data, headers=headers, timeout=10)


def tus_offset(location: str) -> int:
    response = requests.head(location, headers=TUS, timeout=10)
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def upload(sandbox: SandboxInfo, submission_id: str, name: str, data: bytes) -> None:
    """A whole tus upload in one PATCH."""
    created = tus_create(sandbox, submission_id, name, len(data))
    assert created.status_code == 201, created.text
    assert tus_patch(created.headers["Location"], 0, data).status_code == 204


def make_bam(path: Path, reads: int) -> bytes:
    """An unaligned BAM with ``reads`` unmapped records; returns its bytes."""
    header = {"HD": {"VN": "1.6", "SO": "unsorted"}}
    with pysam.AlignmentFile(str(path), "wb", header=header) as bam:
        for number in range(reads):
            record = pysam.AlignedSegment(bam.header)
            record.query_name = f"A00123:8:H5KJ2DSXX:1:1101:{1000 + number}:1000"
            record.flag = 4
            record.query_sequence = "ACGT" * 10
            record.query_qualities = pysam.qualitystring_to_array("F" * 40)
            record.set_tag("CR", "AAAACCCCGGGGTTTT")
            bam.write(record)
    return path.read_bytes()


def file_errors(sandbox: SandboxInfo, dsp_uuid: str) -> dict[str, list[str]]:
    """Validation messages per validator, over all submittables."""
    report = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/validationErrors").json()
    messages: dict[str, list[str]] = {}
    for results in report["errors"].values():
        for result in results:
            for validator, texts in result.items():
                messages.setdefault(validator, []).extend(texts)
    return messages


def plan_files(record: dict[str, Any]) -> list[str]:
    return [file["name"] for job in record["fileUploadPlan"] for file in job["files"]]


def s3_client(sandbox: SandboxInfo) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=sandbox.s3_endpoint_url,
        aws_access_key_id=sandbox.aws_access_key_id,
        aws_secret_access_key=sandbox.aws_secret_access_key,
        region_name="us-east-1",
    )


def s3_bytes(sandbox: SandboxInfo, cloud_url: str) -> bytes:
    """The content of a seeded ``s3://bucket/key`` object."""
    bucket, _, key = cloud_url.removeprefix("s3://").partition("/")
    return s3_client(sandbox).get_object(Bucket=bucket, Key=key)["Body"].read()
