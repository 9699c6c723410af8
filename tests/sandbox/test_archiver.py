"""The archiver stand-in: Api-Key checks, background planning, the plan's shape, non-idempotence."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest
import requests

from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.helpers import (
    archiver,
    file_errors,
    latest,
    plan_files,
    s3_bytes,
    trigger_and_wait,
    upload,
    wait_for,
)

pytestmark = pytest.mark.integration

TEXT = {"Content-Type": "text/plain"}
ALL_KINDS = ["10xV2", "10xV3", "10xV3-noI1", "plain", "lamanno"]


def test_missing_and_wrong_api_key_are_refused(sandbox: SandboxInfo) -> None:
    url = f"{sandbox.archiver_url}/latestArchiveSubmission/{uuid.uuid4()}"
    missing = requests.get(url, timeout=10)
    wrong = requests.get(url, headers={"Api-Key": "not-the-key"}, timeout=10)
    post = requests.post(f"{sandbox.archiver_url}/archiveSubmissions", json={}, timeout=10)
    assert (missing.status_code, missing.json()) == (401, {"message": "header missing Api-Key"})
    assert (wrong.status_code, wrong.json()) == (401, {"message": "invalid Api-Key"})
    assert (post.status_code, post.json()) == (401, {"message": "header missing Api-Key"})


def test_trigger_needs_a_submission_uuid(sandbox: SandboxInfo) -> None:
    response = archiver(sandbox, "POST", "/archiveSubmissions", json={"alias_prefix": "HCA"})
    assert response.status_code == 400
    assert "submission_uuid" in response.json()["message"]


def test_trigger_needs_a_json_object_body(sandbox: SandboxInfo) -> None:
    """The old service reads the body with Flask's get_json(): None unless the Content-Type is
    JSON, and then ``data.get`` fails (as on a JSON null or list): its HTML 500, nothing done."""
    [ignored, later] = sandbox.seed(count=2, jobs=["plain"], reads=10)
    body = json.dumps({"submission_uuid": ignored})
    as_json = {"Content-Type": "application/json"}
    refused = [
        archiver(sandbox, "POST", "/archiveSubmissions", data=body),
        archiver(sandbox, "POST", "/archiveSubmissions", data=body, headers=TEXT),
        archiver(sandbox, "POST", "/archiveSubmissions", data="null", headers=as_json),
        archiver(sandbox, "POST", "/archiveSubmissions", json=[ignored]),
    ]
    for response in refused:
        assert response.status_code == 500
        assert response.headers["Content-Type"].startswith("text/html")
    charset = {"Content-Type": "application/json; charset=utf-8"}
    trigger = archiver(sandbox, "POST", "/archiveSubmissions", data=body, headers=charset)
    assert trigger.status_code == 200
    wait_for("the accepted trigger's record", lambda: latest(sandbox, ignored))
    trigger_and_wait(sandbox, later)  # background work runs in order
    assert len(sandbox.submission_summary(ignored)["dsp_submissions"]) == 1


def test_unknown_latest_is_404_null(sandbox: SandboxInfo) -> None:
    response = archiver(sandbox, "GET", f"/latestArchiveSubmission/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() is None


@pytest.mark.parametrize("report", ["validationErrors", "blockers"])
def test_a_report_dsp_does_not_know_is_an_html_500(sandbox: SandboxInfo, report: str) -> None:
    response = archiver(sandbox, "GET", f"/archiveSubmissions/{uuid.uuid4()}/{report}")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Internal Server Error" in response.text


@pytest.mark.parametrize("route", ["", "/fileUploadPlan", "/entities"])
def test_a_record_ingest_does_not_know_is_an_html_500(sandbox: SandboxInfo, route: str) -> None:
    """These routes look the record up in ingest (findByDspUuid); its 404 is raised, and the old
    service turns that into its HTML 500 page: no JSON 404 a client could take for "no record"."""
    response = archiver(sandbox, "GET", f"/archiveSubmissions/{uuid.uuid4()}{route}")
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Internal Server Error" in response.text


def test_plan_appears_in_the_background_with_one_job_per_run(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=ALL_KINDS, reads=100)
    triggered = archiver(
        sandbox, "POST", "/archiveSubmissions", json={"submission_uuid": submission}
    )
    assert (triggered.status_code, triggered.json()) == (
        200,
        {"message": "successfully triggered!"},
    )
    record = wait_for("the record", lambda: latest(sandbox, submission))
    assert record["submissionUuid"] == submission
    assert record["dspUrl"] == f"{sandbox.dsp_url}/api/submissions/{record['dspUuid']}"
    jobs = record["fileUploadPlan"]
    assert len(jobs) == len(ALL_KINDS)
    for job in jobs:
        assert job["dsp_api_url"] == sandbox.dsp_url
        assert job["submission_url"] == record["dspUrl"]
    schemas = [job.get("conversion", {}).get("schema") for job in jobs]
    assert schemas == ["10xV2", "10xV3", "10xV3", None, "10xV2"]
    read_indexes = [
        sorted(i["read_index"] for i in job["conversion"]["inputs"])
        for job in jobs
        if "conversion" in job
    ]
    assert read_indexes == [
        ["index1", "read1", "read2"],
        ["index1", "read1", "read2"],
        ["read1", "read2"],
        ["read1", "read2"],
    ]
    for job in jobs:
        if "conversion" in job:
            output = f"{job['manifest_id']}_1.bam"
            assert job["conversion"]["output_name"] == output
            assert job["files"] == [{"name": output}]
            urls = [i["cloud_url"] for i in job["conversion"]["inputs"]]
        else:
            [plain] = job["files"]
            assert plain["read_index"] == "read1"
            urls = [plain["cloud_url"]]
        assert all(url.startswith(f"s3://{sandbox.bucket}/{submission}/") for url in urls)

    dsp_uuid = record["dspUuid"]
    plan = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/fileUploadPlan")
    assert plan.json() == {"jobs": jobs}
    assert f"FILE_UPLOAD_PLAN_{dsp_uuid}.json" in plan.headers["Content-Disposition"]
    assert archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}").json() == record
    missing = file_errors(sandbox, dsp_uuid)["FileReference"]
    assert sorted(missing) == sorted(
        f"file {name} referenced in the metadata is not exists on the file storage area"
        for name in plan_files(record)
    )
    blockers = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/blockers").json()
    assert blockers["notReadyFileCount"] == len(ALL_KINDS)
    assert blockers["emptySubmission"] is False
    entities = archiver(sandbox, "GET", f"/archiveSubmissions/{dsp_uuid}/entities").json()
    types = [entity["type"] for entity in entities["entities"]]
    assert types.count("sequencingRun") == len(ALL_KINDS)
    assert {"project", "study", "sample", "sequencingExperiment"} <= set(types)


def test_seeded_reads_are_in_s3_with_10x_layouts(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["10xV2", "10xV3"], reads=20)
    record = trigger_and_wait(sandbox, submission)
    lengths = {}
    for job in record["fileUploadPlan"]:
        schema = job["conversion"]["schema"]
        names = set()
        for item in job["conversion"]["inputs"]:
            lines = gzip.decompress(s3_bytes(sandbox, item["cloud_url"])).decode().splitlines()
            assert len(lines) == 4 * 20
            lengths[schema, item["read_index"]] = len(lines[1])
            names.add(tuple(line.split(" ")[0] for line in lines[0::4]))
        assert len(names) == 1  # the same read names, in the same order, in every file
    assert lengths == {
        ("10xV2", "read1"): 26,
        ("10xV2", "read2"): 98,
        ("10xV2", "index1"): 8,
        ("10xV3", "read1"): 28,
        ("10xV3", "read2"): 91,
        ("10xV3", "index1"): 10,
    }


def test_second_trigger_creates_a_second_dsp_submission(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    first = trigger_and_wait(sandbox, submission)
    second = archiver(sandbox, "POST", "/archiveSubmissions", json={"submission_uuid": submission})
    assert second.status_code == 200

    def newer() -> dict | None:
        record = latest(sandbox, submission)
        return record if record and record["dspUuid"] != first["dspUuid"] else None

    newest = wait_for("a second record", newer)
    dsp_ids = [d["id"] for d in sandbox.submission_summary(submission)["dsp_submissions"]]
    assert dsp_ids == [first["dspUuid"], newest["dspUuid"]]

    def ingest_records(**sort: str) -> list[str]:
        records = requests.get(
            f"{sandbox.ingest_url}/archiveSubmissions/search/findBySubmissionUuid",
            params={"submissionUuid": submission, **sort},
            timeout=10,
        ).json()["_embedded"]["archiveSubmissions"]
        return [record["dspUuid"] for record in records]

    assert ingest_records(sort="created,desc") == [newest["dspUuid"], first["dspUuid"]]
    # newest first only when asked: unsorted, MongoDB gives them in the order they were made
    assert ingest_records() == ingest_records(sort="created,asc") == dsp_ids


def test_unknown_ingest_submission_never_gets_a_record(sandbox: SandboxInfo) -> None:
    unknown = str(uuid.uuid4())
    assert archiver(sandbox, "POST", "/archiveSubmissions", json={"submission_uuid": unknown}).ok
    [known] = sandbox.seed(jobs=["plain"], reads=10)
    trigger_and_wait(sandbox, known)  # background work runs in order: the unknown one is done
    assert archiver(sandbox, "GET", f"/latestArchiveSubmission/{unknown}").status_code == 404


def test_every_complete_starts_background_work_of_its_own(sandbox: SandboxInfo) -> None:
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    record = trigger_and_wait(sandbox, submission)
    dsp_uuid = record["dspUuid"]
    for _ in range(2):  # both while the first one still waits for the data file
        completed = archiver(sandbox, "POST", f"/archiveSubmissions/{dsp_uuid}/complete")
        assert (completed.status_code, completed.json()) == (
            202,
            {"message": "successfully triggered!"},
        )
    [planned] = record["fileUploadPlan"][0]["files"]
    upload(sandbox, dsp_uuid, planned["name"], s3_bytes(sandbox, planned["cloud_url"]))

    def both_done() -> dict | None:
        [dsp] = sandbox.submission_summary(submission)["dsp_submissions"]
        return dsp if dsp["completions"] == 2 else None

    dsp = wait_for("two background completions", both_done, timeout=15)
    assert dsp["complete_requests"] == 2
    assert dsp["status"] == "Completed"
    assert sandbox.submission_summary(submission)["envelope_state"] == "Archived"


def test_an_archiver_that_dies_after_dsp_completes_writes_nothing_back_until_asked_again(
    sandbox_faults: SandboxInfo,
) -> None:
    """``die_after_dsp_completes``: DSP Completed, the envelope left Archiving; a ``complete``
    asked afterwards only writes back (DSP is not submitted again)."""
    [submission] = sandbox_faults.seed(jobs=["plain"], reads=10)
    record = trigger_and_wait(sandbox_faults, submission)
    dsp_uuid = record["dspUuid"]
    [planned] = record["fileUploadPlan"][0]["files"]
    upload(
        sandbox_faults, dsp_uuid, planned["name"], s3_bytes(sandbox_faults, planned["cloud_url"])
    )
    sandbox_faults.set_faults("archiver", die_after_dsp_completes=True)
    assert archiver(sandbox_faults, "POST", f"/archiveSubmissions/{dsp_uuid}/complete").ok

    def completed() -> dict | None:
        [dsp] = sandbox_faults.submission_summary(submission)["dsp_submissions"]
        return dsp if dsp["status"] == "Completed" else None

    wait_for("DSP to complete", completed, timeout=15)
    died = f"complete {dsp_uuid}: DSP Completed; died before writing back"
    wait_for("the background work to die", lambda: died in sandbox_faults.log_path.read_text())
    summary = sandbox_faults.submission_summary(submission)
    assert summary["envelope_state"] == "Archiving"
    assert summary["dsp_submissions"][0]["completions"] == 0

    sandbox_faults.clear_faults()
    assert archiver(sandbox_faults, "POST", f"/archiveSubmissions/{dsp_uuid}/complete").ok
    wait_for(
        "the envelope archived",
        lambda: sandbox_faults.submission_summary(submission)["envelope_state"] == "Archived",
        timeout=15,
    )
    [dsp] = sandbox_faults.submission_summary(submission)["dsp_submissions"]
    assert (dsp["status"], dsp["complete_requests"], dsp["completions"]) == ("Completed", 2, 1)
