"""DSP stand-in: bearer auth, tus uploads, content checks, blockers, completion with accessions."""

from __future__ import annotations

import hashlib
import re
import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import jwt
import pytest
import requests

from tests.fixtures.sandbox import SandboxInfo, start_sandbox
from tests.sandbox.helpers import (
    TUS,
    archiver,
    dsp,
    file_errors,
    make_bam,
    s3_bytes,
    trigger_and_wait,
    tus_create,
    tus_metadata,
    tus_offset,
    tus_patch,
    upload,
    wait_for,
)

pytestmark = pytest.mark.integration

READS = 30
ACCESSION = {
    "project": r"S-BSST\d+",
    "study": r"ERP\d+",
    "sample": r"SAMEA\d+",
    "sequencingExperiment": r"ERX\d+",
    "sequencingRun": r"ERR\d+",
}


def forged_token() -> str:
    """A well-formed token signed with a key the sandbox does not use."""
    return jwt.encode({"exp": 2**40}, "not-the-sandbox-signing-key-" * 2, algorithm="HS256")


def find_file(sandbox: SandboxInfo, dsp_uuid: str, name: str) -> requests.Response:
    params = {"submissionId": dsp_uuid, "filename": name}
    return dsp(sandbox, "GET", "/api/files/search/by-filename-and-submission", params=params)


def ready_document(sandbox: SandboxInfo, dsp_uuid: str, name: str) -> dict:
    def checked() -> dict | None:
        document = find_file(sandbox, dsp_uuid, name).json()
        return document if document["status"] in ("READY_FOR_ARCHIVE", "ERROR") else None

    return wait_for(f"the content check of {name}", checked)


def test_upload_in_two_chunks_then_complete_archives_the_envelope(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    [submission] = sandbox.seed(jobs=["10xV2"], reads=READS)
    record = trigger_and_wait(sandbox, submission)
    dsp_uuid = record["dspUuid"]
    [name] = [f["name"] for f in record["fileUploadPlan"][0]["files"]]
    bam = make_bam(tmp_path / "out.bam", READS)
    assert find_file(sandbox, dsp_uuid, name).status_code == 404

    created = tus_create(sandbox, dsp_uuid, name, len(bam))
    assert created.status_code == 201
    assert created.headers["Tus-Resumable"] == "1.0.0"
    location = created.headers["Location"]
    half = len(bam) // 2
    first = tus_patch(location, 0, bam[:half])
    assert (first.status_code, first.headers["Upload-Offset"]) == (204, str(half))
    assert tus_offset(location) == half
    assert tus_patch(location, 0, bam[:half]).status_code == 409
    partial = find_file(sandbox, dsp_uuid, name).json()
    assert (partial["status"], partial["uploadedSize"], partial["totalSize"]) == (
        "UPLOADING",
        half,
        len(bam),
    )
    assert "FileReference" in file_errors(sandbox, dsp_uuid)
    assert tus_patch(location, half, bam[half:]).status_code == 204

    document = ready_document(sandbox, dsp_uuid, name)
    assert document["status"] == "READY_FOR_ARCHIVE"
    assert document["checksum"] == hashlib.md5(bam).hexdigest()  # noqa: S324
    assert file_errors(sandbox, dsp_uuid) == {}
    blockers = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/blockers").json()
    assert blockers == {
        "notReadyFileCount": 0,
        "validationIssuesPerDataTypeId": {},
        "totalMetadataBlockers": 0,
        "emptySubmission": False,
        "anyPendingValidationResult": False,
    }
    assert dsp(sandbox, "GET", f"/api/submissions/{dsp_uuid}/submissionBlockersSummary").json() == (
        blockers
    )

    completed = archiver(sandbox, "POST", f"/archiveSubmissions/{dsp_uuid}/complete")
    assert (completed.status_code, completed.json()) == (
        202,
        {"message": "successfully triggered!"},
    )
    status_path = f"/api/submissions/{dsp_uuid}/submissionStatus"
    wait_for(
        "DSP status Completed",
        lambda: dsp(sandbox, "GET", status_path).json()["status"] == "Completed",
    )
    statuses = dsp(
        sandbox, "GET", f"/api/processingStatuses/search/by-submission?submissionId={dsp_uuid}"
    ).json()
    assert {item["status"] for item in statuses["_embedded"]["processingStatuses"]} == {"Completed"}
    entities = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/entities").json()
    for entity in entities["entities"]:
        assert re.fullmatch(ACCESSION[entity["type"]], entity["accession"]), entity

    def envelope_state() -> str | None:
        response = requests.get(
            f"{sandbox.ingest_url}/submissionEnvelopes/search/findByUuidUuid",
            params={"uuid": submission},
            timeout=10,
        )
        state = response.json()["submissionState"]
        return state if state == "Archived" else None

    wait_for("the envelope to be Archived", envelope_state)
    [dsp_summary] = sandbox.submission_summary(submission)["dsp_submissions"]
    [file_summary] = dsp_summary["files"]
    assert file_summary["uploaded_exactly_once"] is True
    assert file_summary["md5"] == document["checksum"]


@pytest.mark.parametrize("damage", ["one read short", "cut off"])
def test_a_damaged_bam_fails_the_content_check(
    sandbox: SandboxInfo, tmp_path: Path, damage: str
) -> None:
    [submission] = sandbox.seed(jobs=["10xV3"], reads=READS)
    record = trigger_and_wait(sandbox, submission)
    dsp_uuid = record["dspUuid"]
    [name] = [f["name"] for f in record["fileUploadPlan"][0]["files"]]
    if damage == "one read short":
        data = make_bam(tmp_path / "short.bam", READS - 1)
    else:
        data = make_bam(tmp_path / "full.bam", READS)[:-40]
    upload(sandbox, dsp_uuid, name, data)

    assert ready_document(sandbox, dsp_uuid, name)["status"] == "ERROR"
    [message] = file_errors(sandbox, dsp_uuid)["FileContent"]
    assert name in message
    blockers = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/blockers").json()
    assert blockers["notReadyFileCount"] == 1


def test_a_plain_fastq_is_uploaded_as_it_is(sandbox: SandboxInfo, sandbox_env: dict) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=50)
    record = trigger_and_wait(sandbox, submission)
    [planned] = record["fileUploadPlan"][0]["files"]
    bucket, _, key = planned["cloud_url"].removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=sandbox_env["AWS_ENDPOINT_URL"])  # credentials from env
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    upload(sandbox, record["dspUuid"], planned["name"], data)
    assert ready_document(sandbox, record["dspUuid"], planned["name"])["status"] == (
        "READY_FOR_ARCHIVE"
    )


def test_tus_creation_and_patch_are_checked(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    dsp_uuid = trigger_and_wait(sandbox, submission)["dspUuid"]
    url = f"{sandbox.dsp_url}/files/"

    def create(headers: dict[str, str]) -> int:
        return requests.post(url, headers=headers, timeout=10).status_code

    good = tus_metadata(jwtToken=sandbox.token(), submissionID=dsp_uuid, name="a.fastq.gz")
    assert create({"Upload-Length": "5", "Upload-Metadata": good}) == 412
    assert create({**TUS, "Upload-Metadata": good}) == 400
    no_token = tus_metadata(submissionID=dsp_uuid, name="a.fastq.gz")
    assert create({**TUS, "Upload-Length": "5", "Upload-Metadata": no_token}) == 401
    forged = forged_token()
    bad_token = tus_metadata(jwtToken=forged, submissionID=dsp_uuid, name="a.fastq.gz")
    assert create({**TUS, "Upload-Length": "5", "Upload-Metadata": bad_token}) == 401
    assert tus_create(sandbox, dsp_uuid, "../escape.bam", 5).status_code == 400
    assert tus_create(sandbox, "no-such-submission", "a.bam", 5).status_code == 400

    location = tus_create(sandbox, dsp_uuid, "a.bam", 5).headers["Location"]
    wrong_type = requests.patch(
        location,
        data=b"12345",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"},
        timeout=10,
    )
    assert wrong_type.status_code == 415
    assert tus_patch(location, 0, b"123456").status_code == 413
    unknown = requests.head(f"{sandbox.dsp_url}/files/{'0' * 32}", headers=TUS, timeout=10)
    assert unknown.status_code == 404


def test_tus_head_needs_tus_resumable(sandbox: SandboxInfo) -> None:
    """tus 1.0.0: every request but OPTIONS carries Tus-Resumable, else 412 with Tus-Version."""
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    dsp_uuid = trigger_and_wait(sandbox, submission)["dspUuid"]
    location = tus_create(sandbox, dsp_uuid, "head.fastq.gz", 5).headers["Location"]
    for headers in ({}, {"Tus-Resumable": "0.2.2"}):
        refused = requests.head(location, headers=headers, timeout=10)
        assert refused.status_code == 412
        assert refused.headers["Tus-Version"] == "1.0.0"
        assert "Upload-Offset" not in refused.headers
    assert tus_offset(location) == 0


def test_an_empty_patch_to_a_finished_upload_changes_nothing(sandbox: SandboxInfo) -> None:
    """A finished upload is not finished again (tusd answers 204 with its offset and runs no
    hook): the content check it passed is neither reset nor run twice."""
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    record = trigger_and_wait(sandbox, submission)
    dsp_uuid = record["dspUuid"]
    [planned] = record["fileUploadPlan"][0]["files"]
    data = s3_bytes(sandbox, planned["cloud_url"])
    created = tus_create(sandbox, dsp_uuid, planned["name"], len(data))
    location = created.headers["Location"]
    assert tus_patch(location, 0, data).status_code == 204
    assert ready_document(sandbox, dsp_uuid, planned["name"])["status"] == "READY_FOR_ARCHIVE"

    def upload_row() -> tuple[str, str]:
        uri = f"file:{sandbox.state_dir / 'state.sqlite'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            query = "SELECT completed, check_state FROM uploads WHERE id = ?"
            return db.execute(query, (urlsplit(location).path.rsplit("/", 1)[1],)).fetchone()

    before = upload_row()
    again = tus_patch(location, len(data), b"")
    assert (again.status_code, again.headers["Upload-Offset"]) == (204, str(len(data)))
    assert upload_row() == before == (before[0], "ok")
    assert find_file(sandbox, dsp_uuid, planned["name"]).json()["status"] == "READY_FOR_ARCHIVE"


def test_dsp_and_aap_need_credentials(sandbox: SandboxInfo) -> None:
    path = f"{sandbox.dsp_url}/api/files/search/by-filename-and-submission"
    assert requests.get(path, timeout=10).status_code == 401
    forged = forged_token()
    refused = requests.get(path, headers={"Authorization": f"Bearer {forged}"}, timeout=10)
    assert refused.status_code == 401
    assert (
        requests.get(sandbox.aap_url, auth=(sandbox.aap_username, "wrong"), timeout=10).status_code
        == 401
    )
    claims = jwt.decode(sandbox.token(), options={"verify_signature": False})
    assert claims["exp"] > claims["iat"]


def test_expired_tokens_are_refused(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "state", "--token-ttl", "1") as short:
        [submission] = short.seed(jobs=["plain"], reads=10)
        dsp_uuid = trigger_and_wait(short, submission)["dspUuid"]
        token = short.token()
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 1
        status = f"{short.dsp_url}/api/submissions/{dsp_uuid}/submissionStatus"
        headers = {"Authorization": f"Bearer {token}"}

        def refused() -> bool:
            return requests.get(status, headers=headers, timeout=10).status_code == 401

        wait_for("the token to expire", refused, timeout=10)
        assert "expired" in requests.get(status, headers=headers, timeout=10).json()["message"]
        assert tus_create(short, dsp_uuid, "late.fastq.gz", 5, token=token).status_code == 401


def test_bytes_before_a_broken_patch_are_kept(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    dsp_uuid = trigger_and_wait(sandbox, submission)["dspUuid"]
    location = tus_create(sandbox, dsp_uuid, "partial.fastq.gz", 1000).headers["Location"]
    path = urlsplit(location).path
    port = urlsplit(sandbox.dsp_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
            "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        connection.sendall(head.encode() + b"x" * 300)
    wait_for("the kept bytes", lambda: tus_offset(location) == 300)
    assert tus_patch(location, 300, b"y" * 700).status_code == 204


def test_a_rejected_item_leaves_the_submission_processing_for_good(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    rejections = f"{sandbox.admin_url}/submissions/{submission}/rejections"
    assert requests.put(rejections, json={"types": ["nope"]}, timeout=10).status_code == 400
    assert requests.put(rejections, json={"types": ["sample"]}, timeout=10).ok
    record = trigger_and_wait(sandbox, submission)
    dsp_uuid = record["dspUuid"]
    [planned] = record["fileUploadPlan"][0]["files"]
    upload(sandbox, dsp_uuid, planned["name"], s3_bytes(sandbox, planned["cloud_url"]))
    assert archiver(sandbox, "POST", f"/archiveSubmissions/{dsp_uuid}/complete").status_code == 202
    statuses_path = f"/api/processingStatuses/search/by-submission?submissionId={dsp_uuid}"

    def decided() -> list | None:
        items = dsp(sandbox, "GET", statuses_path).json()["_embedded"]["processingStatuses"]
        done = all(item["status"] in ("Completed", "Rejected") for item in items)
        return items if done else None

    items = wait_for("the archives' decisions", decided)
    for item in items:
        rejected = item["submittableType"] == "Sample"
        assert item["status"] == ("Rejected" if rejected else "Completed"), item
        assert (item["accession"] is None) == rejected, item
    status_path = f"/api/submissions/{dsp_uuid}/submissionStatus"
    for _ in range(10):  # the archiver's completion keeps polling; nothing is archived
        assert dsp(sandbox, "GET", status_path).json()["status"] == "Processing"
        summary = sandbox.submission_summary(submission)
        assert summary["envelope_state"] == "Archiving"
        assert summary["dsp_submissions"][0]["completions"] == 0
        time.sleep(0.1)
