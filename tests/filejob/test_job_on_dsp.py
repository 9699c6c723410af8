"""A file job run again when DSP already holds its files (a cleared task, a second runner):
JobRunner in process, over HTTP against the sandbox (DSP with tus, AAP, moto S3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hca_archive.clients import AapTokenSource, ArchiverClient, DspClient
from hca_archive.convert import converter
from hca_archive.filejob.job import JobOutcome, JobRunner
from hca_archive.filejob.s3download import S3Downloader
from hca_archive.plan import parse_plan
from hca_archive.sandbox.process import SandboxInfo
from tests.sandbox.helpers import s3_client, trigger_and_wait, wait_for

pytestmark = pytest.mark.integration


def tokens(sandbox: SandboxInfo) -> AapTokenSource:
    return AapTokenSource(sandbox.aap_url, sandbox.aap_username, sandbox.aap_password)


def runner(sandbox: SandboxInfo) -> JobRunner:
    return JobRunner(S3Downloader(s3_client(sandbox)), tokens(sandbox), chunk_size=64 * 1024)


def archived_once(sandbox: SandboxInfo, kind: str, tmp_path: Path, *, complete: bool):
    """A submission of one job whose file the job uploaded and DSP checked; DSP Completed if
    ``complete``."""
    (submission,) = sandbox.seed(1, jobs=[kind], reads=300)
    record = trigger_and_wait(sandbox, submission)
    plan_jobs: list[dict[str, Any]] = record["fileUploadPlan"]
    (job,) = parse_plan({"jobs": plan_jobs}, dsp_url=sandbox.dsp_url).jobs
    first = runner(sandbox).run(job, tmp_path / "run-1")
    assert first.status == "succeeded", first.error
    assert first.files[0]["upload"] == "uploaded"
    dsp_uuid = record["dspUuid"]
    archiver = ArchiverClient(sandbox.archiver_url, sandbox.archiver_api_key)
    wait_for("DSP's check of the file", lambda: archiver.blockers(dsp_uuid).ready, 60)
    if complete:
        archiver.complete(dsp_uuid)
        dsp = DspClient(sandbox.dsp_url, tokens(sandbox))
        wait_for("DSP to complete", lambda: dsp.status(dsp_uuid) == "Completed", 60)
    return submission, plan_jobs, job, first


def dsp_files(sandbox: SandboxInfo, submission: str) -> dict[str, dict[str, Any]]:
    (dsp_submission,) = sandbox.submission_summary(submission)["dsp_submissions"]
    return {file["name"]: file for file in dsp_submission["files"]}


def assert_nothing_done(outcome: JobOutcome, work: Path) -> None:
    assert outcome.inputs == []
    assert outcome.seconds["download"] == outcome.seconds["convert"] == 0
    assert outcome.seconds["upload"] == 0
    assert not any((work / "job-0" / "inputs").iterdir())
    assert not any((work / "job-0" / "output").iterdir())


@pytest.mark.parametrize("dsp_status", ["Draft", "Completed"])
def test_a_job_run_again_after_the_converter_changed_reports_its_bam_already_archived(
    sandbox: SandboxInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dsp_status: str
) -> None:
    """Cleared after success, on another runner, with a converter whose BAM header (and so
    md5) differs: the job must neither convert nor upload a second BAM (Completed: refused)."""
    submission, _plan, job, first = archived_once(
        sandbox, "10xV2", tmp_path, complete=dsp_status == "Completed"
    )
    monkeypatch.setattr(converter, "__version__", "99.0.0-other")

    again = runner(sandbox).run(job, tmp_path / "run-2")

    assert again.status == "succeeded", again.error
    assert_nothing_done(again, tmp_path / "run-2")
    assert again.already_archived
    (bam,) = first.files
    (entry,) = again.to_dict()["files"]
    assert entry["upload"] == "already-on-dsp" and entry["reads"] is None
    assert (entry["name"], entry["bytes"], entry["md5"]) == (bam["name"], bam["bytes"], bam["md5"])
    assert entry["on_dsp"]["totalSize"] == entry["on_dsp"]["uploadedSize"] == bam["bytes"]
    held = dsp_files(sandbox, submission)[bam["name"]]
    assert held["uploaded_exactly_once"] and held["md5"] == bam["md5"]


def test_a_plain_job_run_again_is_already_archived_without_a_download(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    submission, _plan, job, first = archived_once(sandbox, "plain", tmp_path, complete=False)
    again = runner(sandbox).run(job, tmp_path / "run-2")
    assert again.status == "succeeded", again.error
    assert_nothing_done(again, tmp_path / "run-2")
    assert again.already_archived
    (entry,) = again.files
    assert (entry["bytes"], entry["md5"]) == (first.files[0]["bytes"], first.files[0]["md5"])
    assert dsp_files(sandbox, submission)[entry["name"]]["uploaded_exactly_once"]


def test_a_file_missing_from_a_finished_submission_fails_the_job_naming_it_not_uploading(
    sandbox: SandboxInfo, tmp_path: Path
) -> None:
    submission, plan_jobs, _job, _first = archived_once(sandbox, "plain", tmp_path, complete=True)
    plan_jobs[0]["files"][0]["name"] = "late.fastq.gz"  # a file DSP never got
    (late,) = parse_plan({"jobs": plan_jobs}, dsp_url=sandbox.dsp_url).jobs
    before = dsp_files(sandbox, submission)

    outcome = runner(sandbox).run(late, tmp_path / "run-2")

    assert outcome.status == "failed"
    assert outcome.error == (
        f"job 0 ({late.label}): check: DSP submission {late.submission_id} is Completed, so it "
        "accepts no more files, and it lacks late.fastq.gz (DSP does not have it yet)"
    )
    assert outcome.retryable is False
    assert_nothing_done(outcome, tmp_path / "run-2")
    assert not outcome.already_archived
    assert dsp_files(sandbox, submission) == before
