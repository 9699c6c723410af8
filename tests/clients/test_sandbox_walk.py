"""The clients walk a whole archiving over HTTP against the sandbox, as the DAG does by steps."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import boto3
import pytest
import requests

from hca_archive.clients import AapTokenSource, ArchiverClient, DspClient, IngestClient
from hca_archive.filejob.tus import TusClient
from hca_archive.http import ServiceError
from hca_archive.plan import parse_plan, parse_s3_url
from hca_archive.sandbox.process import SandboxInfo

pytestmark = pytest.mark.integration
T = TypeVar("T")


def eventually(what: str, probe: Callable[[], T], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


def test_a_plain_file_submission_archived_with_the_clients(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    (submission_uuid,) = sandbox.seed(jobs=["plain"], reads=100)
    ingest = IngestClient(sandbox.ingest_url)
    archiver = ArchiverClient(sandbox.archiver_url, sandbox.archiver_api_key)
    tokens = AapTokenSource(sandbox.aap_url, sandbox.aap_username, sandbox.aap_password)
    dsp = DspClient(sandbox.dsp_url, tokens)
    assert ingest.find_envelope(submission_uuid).state == "Archiving"

    archiver.trigger_archive(submission_uuid)
    record = eventually("the archive record", lambda: archiver.latest(submission_uuid))
    plan = parse_plan(archiver.file_upload_plan(record.dsp_uuid), dsp_url=sandbox.dsp_url)
    (job,) = plan.jobs
    (planned,) = job.files
    report = archiver.validation_errors(record.dsp_uuid)
    assert not report.metadata_errors and len(report.file_reference_errors) == 1
    assert not archiver.blockers(record.dsp_uuid).ready

    bucket, key = parse_s3_url(planned.cloud_url)
    local = tmp_path / planned.name
    s3 = boto3.client(
        "s3",
        endpoint_url=sandbox.s3_endpoint_url,
        aws_access_key_id=sandbox.aws_access_key_id,
        aws_secret_access_key=sandbox.aws_secret_access_key,
        region_name="us-east-1",
    )
    s3.download_file(bucket, key, str(local))
    TusClient(dsp.tus_endpoint, tokens, chunk_size=8192).upload(
        local,
        name=planned.name,
        submission_id=job.submission_id,
        md5=hashlib.md5(local.read_bytes(), usedforsecurity=False).hexdigest(),
        state_file=tmp_path / "upload.json",
    )
    eventually("blockers to clear", lambda: archiver.blockers(record.dsp_uuid).ready)
    assert archiver.validation_errors(record.dsp_uuid).clean
    assert dsp.find_file(job.submission_id, planned.name)["totalSize"] == local.stat().st_size

    archiver.complete(record.dsp_uuid)
    eventually("DSP to complete", lambda: dsp.status(record.dsp_uuid) == "Completed")
    entities = archiver.entities(record.dsp_uuid)
    assert entities and all(entity.accession for entity in entities)
    accessions = {entity.accession[:3] for entity in entities}
    assert {"SAM", "ERX", "ERR"} <= accessions
    assert ingest.find_envelope(submission_uuid).state == "Archived"


def test_the_archiver_refuses_a_wrong_key(sandbox: SandboxInfo) -> None:
    archiver = ArchiverClient(sandbox.archiver_url, "not-the-key")
    with pytest.raises(ServiceError) as refused:
        archiver.latest("2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10")
    assert refused.value.status == 401
    assert refused.value.message == "invalid Api-Key"


def test_the_archiver_refuses_a_request_without_key(sandbox: SandboxInfo) -> None:
    """The client cannot even be built without a key, so ask the way a careless script would."""
    response = requests.get(f"{sandbox.archiver_url}/latestArchiveSubmission/x", timeout=30)
    assert response.status_code == 401
    assert response.json() == {"message": "header missing Api-Key"}
