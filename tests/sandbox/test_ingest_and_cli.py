"""The ingest stand-in's envelope searches and archivedEvent, DSP's own submit, and the seed CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.fixtures.sandbox import SandboxInfo, start_sandbox
from tests.sandbox.helpers import dsp, s3_bytes, trigger_and_wait, upload, wait_for

pytestmark = pytest.mark.integration


def test_envelopes_by_state_are_paged(sandbox: SandboxInfo) -> None:
    seeded = set(sandbox.seed(count=3, jobs=["plain"], reads=5))
    url = f"{sandbox.ingest_url}/submissionEnvelopes/search/findBySubmissionState"
    found, params = [], {"submissionState": "ARCHIVING", "page": 0, "size": 2}
    page = requests.get(url, params=params, timeout=10).json()
    while True:
        found += [e["uuid"]["uuid"] for e in page["_embedded"]["submissionEnvelopes"]]
        assert len(page["_embedded"]["submissionEnvelopes"]) <= 2
        if "next" not in page["_links"]:
            break
        page = requests.get(page["_links"]["next"]["href"], timeout=10).json()
    assert seeded <= set(found)
    assert len(found) == len(set(found)) == page["page"]["totalElements"]


@pytest.mark.parametrize("spelling", ["Archiving", "archiving"])
def test_envelopes_by_state_need_the_enum_name(sandbox: SandboxInfo, spelling: str) -> None:
    """Spring converts submissionState to the SubmissionState enum by exact name (ARCHIVING);
    the rendered spelling fails the conversion, which Spring Data REST answers with a 500."""
    url = f"{sandbox.ingest_url}/submissionEnvelopes/search/findBySubmissionState"
    refused = requests.get(url, params={"submissionState": spelling}, timeout=10)
    assert refused.status_code == 500
    assert "SubmissionState" in refused.json()["message"]


def test_archived_event_moves_archiving_to_archived_once(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=5)
    found = requests.get(
        f"{sandbox.ingest_url}/submissionEnvelopes/search/findByUuidUuid",
        params={"uuid": submission},
        timeout=10,
    ).json()
    assert found["submissionState"] == "Archiving"
    archived_url = found["_links"]["archived"]["href"]
    first = requests.put(archived_url, timeout=10)
    assert (first.status_code, first.json()["submissionState"]) == (202, "Archived")
    assert "archived" not in first.json()["_links"]
    assert requests.put(archived_url, timeout=10).status_code == 409
    unknown = requests.get(
        f"{sandbox.ingest_url}/submissionEnvelopes/search/findByUuidUuid",
        params={"uuid": "no-such-uuid"},
        timeout=10,
    )
    assert unknown.status_code == 404


def test_dsp_submit_is_refused_until_ready_then_completes(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=5)
    record = trigger_and_wait(sandbox, submission)
    dsp_uuid = record["dspUuid"]
    status_path = f"/api/submissions/{dsp_uuid}/submissionStatus"
    assert dsp(sandbox, "PATCH", status_path, json={"status": "Submitted"}).status_code == 400
    [planned] = record["fileUploadPlan"][0]["files"]
    upload(sandbox, dsp_uuid, planned["name"], s3_bytes(sandbox, planned["cloud_url"]))
    available = f"/api/submissions/{dsp_uuid}/availableSubmissionStatuses"

    def submittable() -> bool:
        statuses = dsp(sandbox, "GET", available).json()["_embedded"]["statusDescriptions"]
        return [s["statusName"] for s in statuses] == ["Submitted"]

    wait_for("Submitted to become available", submittable)
    body = '{"status": "Submitted"}'
    for headers in ({}, {"Content-Type": "text/plain"}):  # Spring MVC reads JSON bodies only
        unread = dsp(sandbox, "PATCH", status_path, data=body, headers=headers)
        assert unread.status_code == 415
    assert dsp(sandbox, "GET", status_path).json()["status"] == "Draft"
    submitted = dsp(sandbox, "PATCH", status_path, json={"status": "Submitted"})
    assert (submitted.status_code, submitted.json()["status"]) == (200, "Submitted")
    wait_for("Completed", lambda: dsp(sandbox, "GET", status_path).json()["status"] == "Completed")
    assert sandbox.submission_summary(submission)["envelope_state"] == "Archiving"


def test_a_submitted_submission_is_processing_before_it_completes(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "state", "--plan-delay", "0.3", "--process-delay", "1") as slow:
        [submission] = slow.seed(jobs=["plain"], reads=5)
        record = trigger_and_wait(slow, submission)
        dsp_uuid = record["dspUuid"]
        [planned] = record["fileUploadPlan"][0]["files"]
        upload(slow, dsp_uuid, planned["name"], s3_bytes(slow, planned["cloud_url"]))
        status_path = f"/api/submissions/{dsp_uuid}/submissionStatus"

        def submitted() -> bool:
            return dsp(slow, "PATCH", status_path, json={"status": "Submitted"}).ok

        wait_for("the submission to be accepted", submitted)
        seen: list[str] = []

        def status_is(wanted: str) -> bool:
            seen.append(dsp(slow, "GET", status_path).json()["status"])
            return seen[-1] == wanted

        wait_for("Processing", lambda: status_is("Processing"))
        items = dsp(
            slow, "GET", f"/api/processingStatuses/search/by-submission?submissionId={dsp_uuid}"
        ).json()
        items = items["_embedded"]["processingStatuses"]
        assert {(item["status"], item["accession"]) for item in items} == {("Processing", None)}
        wait_for("Completed", lambda: status_is("Completed"))
        assert list(dict.fromkeys(seen))[-2:] == ["Processing", "Completed"]


def test_seed_command_prints_the_new_submissions(sandbox: SandboxInfo) -> None:
    command = [sys.executable, "-m", "hca_archive.cli", "sandbox", "seed"]
    command += ["--state-dir", str(sandbox.state_dir), "--count", "2", "--jobs", "plain,10xV3-noI1"]
    command += ["--reads", "5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    uuids = result.stdout.split()
    assert len(uuids) == 2
    assert sandbox.submission_summary(uuids[0])["jobs"] == ["plain", "10xV3-noI1"]
    bad = subprocess.run(
        [*command[:-2], "--jobs", "10xV9"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode != 0
    assert "10xV9" in bad.stderr
