"""End to end, runner=lsf: file jobs go over real SSH to the LSF stand-in, against the sandbox."""

from __future__ import annotations

import pytest

from tests.fixtures.airflow import AirflowStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_submission_is_archived_through_lsf(airflow_stack: AirflowStack, hpc) -> None:
    (submission_uuid,) = airflow_stack.sandbox.seed(jobs=["10xV2", "plain"], reads=300)
    commands_before = len(hpc.command_record())
    run_id, run = airflow_stack.archive(submission_uuid, runner="lsf")
    assert run["state"] == "success", airflow_stack.task_log(run_id, "run_lsf")
    states = airflow_stack.states(run_id)
    assert states["run_lsf"] == ["success", "success"]
    assert states["run_local"] == ["skipped"]
    summary = airflow_stack.sandbox.submission_summary(submission_uuid)
    assert summary["envelope_state"] == "Archived"
    (dsp,) = summary["dsp_submissions"]
    assert dsp["status"] == "Completed"
    assert all(file["uploaded_exactly_once"] for file in dsp["files"]), dsp["files"]
    commands = hpc.command_record()[commands_before:]
    assert sum(1 for command in commands if command["argv"][0].endswith("bsub")) == 2
    secrets = [
        airflow_stack.sandbox.aap_password,
        airflow_stack.sandbox.aws_secret_access_key,
        airflow_stack.sandbox.archiver_api_key,
    ]
    record = repr(commands)
    assert not [secret for secret in secrets if secret in record]
    assert "LSF job" in airflow_stack.task_log(run_id, "run_lsf")
