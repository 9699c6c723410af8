"""Hostile upload plans and bad submissions are refused before anything runs; big plans are batched.

Three levels: the DAG (the sandbox archiver serves the hostile plan: the run fails at
``fetch_plan`` naming job and field, no file job runs, nothing is uploaded), ``hca-archive
run-job`` (refused before any download), and ``archiving.fetch_plan`` over HTTP for a plan of
10,000 jobs. These tests share the session sandbox and Airflow stack: they add no faults.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.configuration import conf

from hca_archive import archiving
from hca_archive.clients.archiver import ArchiverClient
from hca_archive.orchestration.archive_dag import MAX_MAPPED_TASKS
from hca_archive.sandbox.process import SandboxInfo
from tests.fixtures.airflow import DAG_ID, RUN_TIMEOUT, AirflowStack
from tests.reliability.hostile_plans import CASES, SHELL_NAMES, HostileCase
from tests.sandbox.helpers import trigger_and_wait

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HCA_ARCHIVE = Path(sys.executable).with_name("hca-archive")
NOT_RUN = {"upstream_failed", "skipped", "removed", None}


@pytest.fixture(scope="module")
def real_job(sandbox: SandboxInfo) -> dict[str, Any]:
    """A valid plain job of a real archive record: real S3 objects, the real DSP submission."""
    (submission,) = sandbox.seed(jobs=["plain"], reads=20)
    (job,) = trigger_and_wait(sandbox, submission)["fileUploadPlan"]
    return job


@pytest.fixture(scope="module")
def hostile_runs(airflow_stack: AirflowStack, real_job) -> dict[str, tuple[str, str, dict]]:
    """Every hostile case, plus a Draft submission, archived side by side; by case name:
    (submission uuid, run id, finished run)."""
    sandbox = airflow_stack.sandbox
    submissions = sandbox.seed(count=len(CASES) + 1, jobs=["plain"], reads=20)
    started = {}
    for case, submission in zip(CASES, submissions, strict=False):
        sandbox.replace_plan(submission, case.make(real_job))
        started[case.name] = submission
    started["draft"] = submissions[-1]
    sandbox.set_envelope_state(submissions[-1], "Draft")
    run_ids = {
        name: airflow_stack.api.trigger(DAG_ID, {"submission_uuid": submission})
        for name, submission in started.items()
    }
    return {
        name: (
            started[name],
            run_id,
            airflow_stack.api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT),
        )
        for name, run_id in run_ids.items()
    }


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_hostile_plan_fails_the_run_at_fetch_plan_naming_job_and_field(
    airflow_stack: AirflowStack, hostile_runs, real_job, case: HostileCase
) -> None:
    submission, run_id, run = hostile_runs[case.name]
    assert run["state"] == "failed"
    states = airflow_stack.states(run_id)
    assert states["fetch_plan"] == ["failed"], states
    assert set(states.get("run_local", [None])) <= NOT_RUN, states
    assert case.expected(real_job) in airflow_stack.task_log(run_id, "fetch_plan")
    (dsp,) = airflow_stack.sandbox.submission_summary(submission)["dsp_submissions"]
    assert dsp["status"] == "Draft"
    assert all(file["uploads_created"] == 0 for file in dsp["files"]), dsp["files"]


def test_a_submission_not_in_archiving_state_is_reported_not_archived(
    airflow_stack: AirflowStack, hostile_runs
) -> None:
    submission, run_id, run = hostile_runs["draft"]
    assert run["state"] == "failed"
    states = airflow_stack.states(run_id)
    assert states["check_submission"] == ["failed"]
    assert states["request_archive"] == ["upstream_failed"]
    message = f"submission {submission} is Draft, not Archiving: nothing archived"
    assert message in airflow_stack.task_log(run_id, "check_submission")
    assert message in airflow_stack.task_log(run_id, "report")
    summary = airflow_stack.sandbox.submission_summary(submission)
    assert summary["dsp_submissions"] == []
    assert summary["envelope_state"] == "Draft"


def run_job(
    sandbox: SandboxInfo, jobs: list[dict[str, Any]], tmp_path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``hca-archive run-job`` on ``jobs`` in ``tmp_path`` (also its working directory)."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"jobs": jobs}))
    workdir = tmp_path / "work"
    command = [str(HCA_ARCHIVE), "run-job", "--plan", str(plan), "--workdir", str(workdir)]
    finished = subprocess.run(
        [*command, *options],
        env={**os.environ, **sandbox.env()},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return finished, workdir


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_run_job_refuses_a_hostile_plan_before_any_download(
    sandbox: SandboxInfo, real_job, tmp_path: Path, case: HostileCase
) -> None:
    jobs = case.make(real_job)
    # Of two jobs uploading one name, the second is the one refused; run only that one.
    options = ("--job", str(len(jobs) - 1)) if len(jobs) > 1 else ()
    finished, workdir = run_job(sandbox, jobs, tmp_path, *options)
    expected = case.expected(real_job)
    if jobs:
        assert finished.returncode == 1, finished.stderr
        (job,) = json.loads(finished.stdout)["jobs"]
        assert job["status"] == "failed"
        assert expected in job["error"]
        assert job["files"] == [] and job["inputs"] == []
        downloaded = [p.name for p in workdir.rglob("*") if p.is_file()]
        assert downloaded == [f"result-{job['index']}.json"], downloaded
        assert not list(tmp_path.rglob("pwned*"))
    else:
        assert finished.returncode == 2
        assert expected in finished.stderr
        assert not workdir.exists()


def test_shell_metacharacters_in_names_are_refused_in_every_job_before_anything_runs(
    sandbox: SandboxInfo, real_job, tmp_path: Path
) -> None:
    """A plan of three jobs, each naming a file with shell syntax: each job fails, naming itself
    and the field; nothing is downloaded or uploaded, and nothing in the names runs (a shell would
    have created ``pwned-*`` in the working directory)."""
    jobs = []
    for number, name in enumerate(SHELL_NAMES):
        job = copy.deepcopy(real_job)
        job["manifest_id"] = f"{real_job['manifest_id']}-shell-{number}"
        job["files"][0]["name"] = name
        jobs.append(job)
    finished, workdir = run_job(sandbox, jobs, tmp_path)
    assert finished.returncode == 1, finished.stderr
    results = json.loads(finished.stdout)["jobs"]
    assert [result["status"] for result in results] == ["failed"] * len(SHELL_NAMES)
    for number, result in enumerate(results):
        prefix = f"job {number} (manifest {real_job['manifest_id']}-shell-{number})"
        assert f"{prefix}: files[0].name: contains shell metacharacters" in result["error"]
        assert result["files"] == [] and result["inputs"] == []
    downloaded = sorted(p.name for p in workdir.rglob("*") if p.is_file())
    assert downloaded == [f"result-{number}.json" for number in range(len(SHELL_NAMES))]
    assert not list(tmp_path.rglob("pwned*"))
    assert not list(Path.cwd().glob("pwned*"))


def test_fetch_plan_batches_ten_thousand_jobs_into_at_most_1024_tasks(
    sandbox: SandboxInfo, real_job
) -> None:
    (submission,) = sandbox.seed(jobs=["plain"], reads=20)
    dsp_uuid = trigger_and_wait(sandbox, submission)["dspUuid"]
    jobs = []
    submission_url = real_job["submission_url"].rsplit("/", 1)[0] + f"/{dsp_uuid}"
    for number in range(10_000):
        job = copy.deepcopy(real_job)
        job["manifest_id"] = f"m{number:05d}"
        job["submission_url"] = submission_url  # real_job is of another submission
        for file in job["files"]:
            file["name"] = f"m{number:05d}_{file['name']}"
        jobs.append(job)
    sandbox.replace_plan(submission, jobs)

    archiver = ArchiverClient(sandbox.archiver_url, sandbox.archiver_api_key)
    plan = archiving.fetch_plan(archiver, dsp_uuid, MAX_MAPPED_TASKS)

    assert plan.job_count == 10_000
    assert len(plan.batches) <= conf.getint("core", "max_map_length")
    flattened = [job["manifest_id"] for batch in plan.batches for job in batch]
    assert flattened == [job["manifest_id"] for job in jobs]
    assert archiving.batch_label(plan.batches[0]).endswith(
        f"(+{len(plan.batches[0]) - 1} more jobs)"
    )
