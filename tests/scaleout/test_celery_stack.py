"""The scale-out topology without Docker: CeleryExecutor on Postgres and Redis, two workers.

One run archives a 20-job submission; a second survives SIGKILL of a worker in the middle of a
file job: the task is retried on the other worker and DSP sees every file uploaded once.
"""

from __future__ import annotations

import time

import pytest

from hca_archive.clients.airflow_api import AirflowApi
from hca_archive.devstack.airflow_celery import AirflowCelery
from hca_archive.sandbox.process import SandboxInfo
from tests.scaleout.conftest import DAG_ID

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_TIMEOUT = 420
MID_JOB_TIMEOUT = 180


def archived_once(sandbox: SandboxInfo, submission_uuid: str, files: int) -> None:
    summary = sandbox.submission_summary(submission_uuid)
    assert summary["envelope_state"] == "Archived"
    assert len(summary["dsp_submissions"]) == 1, summary["dsp_submissions"]
    dsp = summary["dsp_submissions"][0]
    assert dsp["status"] == "Completed"
    assert len(dsp["files"]) == files
    assert all(file["uploaded_exactly_once"] for file in dsp["files"]), dsp["files"]


def run_local_tries(api: AirflowApi, run_id: str) -> list[tuple[str, int]]:
    return [
        (ti["state"], ti["try_number"])
        for ti in api.task_instances(DAG_ID, run_id)
        if ti["task_id"] == "run_local"
    ]


def test_twenty_jobs_are_archived_by_two_workers(
    celery_stack: tuple[AirflowCelery, AirflowApi], sandbox: SandboxInfo
) -> None:
    stack, api = celery_stack
    (submission_uuid,) = sandbox.seed(jobs=["plain"] * 20, reads=20)
    run_id = api.trigger(DAG_ID, {"submission_uuid": submission_uuid})
    run = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    assert run["state"] == "success", run_local_tries(api, run_id)
    assert run_local_tries(api, run_id) == [("success", 1)] * 20
    archived_once(sandbox, submission_uuid, files=20)
    for worker in stack.worker_names:
        log = (stack.log_dir / f"{worker}.log").read_text(errors="replace")
        assert "execute_workload" in log, f"{worker} received no task"


def test_a_worker_killed_mid_job_is_survived_without_duplicate_uploads(
    celery_stack: tuple[AirflowCelery, AirflowApi], sandbox: SandboxInfo
) -> None:
    stack, api = celery_stack
    (submission_uuid,) = sandbox.seed(jobs=["10xV3"] * 4, reads=20_000)
    run_id = api.trigger(DAG_ID, {"submission_uuid": submission_uuid})
    deadline = time.monotonic() + MID_JOB_TIMEOUT
    while (victim := stack.worker_running_job()) is None:
        assert time.monotonic() < deadline, "no worker ever ran a file job"
        time.sleep(0.2)
    stack.kill_worker(victim)
    run = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    tries = run_local_tries(api, run_id)
    assert run["state"] == "success", tries
    assert all(state == "success" for state, _ in tries), tries
    assert any(try_number > 1 for _, try_number in tries), f"no task was retried: {tries}"
    archived_once(sandbox, submission_uuid, files=4)
