"""End to end: Airflow standalone runs archive_submission against the sandbox, over HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.airflow import DAG_ID, AirflowStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def only_dsp_submission(stack: AirflowStack, submission_uuid: str) -> dict:
    dsp_submissions = stack.sandbox.submission_summary(submission_uuid)["dsp_submissions"]
    assert len(dsp_submissions) == 1, dsp_submissions
    return dsp_submissions[0]


@pytest.fixture(scope="module")
def archived(airflow_stack: AirflowStack) -> tuple[str, str, dict]:
    """A submission with a 3-job plan (10xV2 with I1, 10xV3, plain), archived once."""
    (submission_uuid,) = airflow_stack.sandbox.seed(jobs=["10xV2", "10xV3", "plain"], reads=300)
    run_id, run = airflow_stack.archive(submission_uuid)
    return submission_uuid, run_id, run


def test_a_three_job_submission_is_archived(airflow_stack: AirflowStack, archived) -> None:
    submission_uuid, run_id, run = archived
    assert run["state"] == "success", airflow_stack.task_log(run_id, "report")
    summary = airflow_stack.sandbox.submission_summary(submission_uuid)
    assert summary["envelope_state"] == "Archived"
    dsp = only_dsp_submission(airflow_stack, submission_uuid)
    assert dsp["status"] == "Completed"
    assert len(dsp["files"]) == 3
    assert all(file["uploaded_exactly_once"] for file in dsp["files"]), dsp["files"]
    assert all(accession for accession in dsp["accessions"].values())
    assert dsp["complete_requests"] == 1, dsp
    assert airflow_stack.states(run_id)["run_local"] == ["success"] * 3


def test_the_report_lists_files_and_accessions(airflow_stack: AirflowStack, archived) -> None:
    submission_uuid, run_id, _ = archived
    record = airflow_stack.audit_record(run_id)
    dsp = only_dsp_submission(airflow_stack, submission_uuid)
    uploaded = {file["name"]: file["md5"] for file in dsp["files"]}
    assert {file["name"]: file["md5"] for file in record["files"]} == uploaded
    assert {a["accession"] for a in record["accessions"]} == set(dsp["accessions"].values())
    assert record["params"]["submission_uuid"] == submission_uuid
    assert [step["step"] for step in record["steps"]][:2] == ["check_submission", "request_archive"]
    note = airflow_stack.api.run(DAG_ID, run_id)["note"]
    assert note.startswith(f"{submission_uuid} (sandbox): finished; DSP submission ")
    assert all(accession in note for accession in dsp["accessions"].values())
    log = airflow_stack.task_log(run_id, "report")
    for name, md5 in uploaded.items():
        assert f"file {name}: " in log and md5 in log


def test_rerunning_the_request_step_keeps_one_dsp_submission(
    airflow_stack: AirflowStack, archived
) -> None:
    submission_uuid, run_id, _ = archived
    airflow_stack.api.json(
        "POST",
        f"/dags/{DAG_ID}/clearTaskInstances",
        json={
            "dag_run_id": run_id,
            "task_ids": ["request_archive"],
            "only_failed": False,
            "dry_run": False,
            "reset_dag_runs": True,
        },
        resend=True,  # clearing twice re-runs the step as once does
    )
    run = airflow_stack.api.wait_for_run(DAG_ID, run_id, 300)
    assert run["state"] == "success"
    assert "exists; reusing it" in airflow_stack.task_log(run_id, "request_archive")
    only_dsp_submission(airflow_stack, submission_uuid)


def test_two_runs_for_one_submission_make_one_dsp_submission(airflow_stack: AirflowStack) -> None:
    """A wrangler's run and the sweep's may start together; only one asks the archiver."""
    (submission_uuid,) = airflow_stack.sandbox.seed(jobs=["plain"], reads=50)
    conf = {"submission_uuid": submission_uuid}
    run_ids = [airflow_stack.api.trigger(DAG_ID, conf) for _ in range(2)]
    runs = [airflow_stack.api.wait_for_run(DAG_ID, run_id, 600) for run_id in run_ids]
    assert [run["state"] for run in runs] == ["success", "success"]
    dsp = only_dsp_submission(airflow_stack, submission_uuid)
    assert all(file["uploaded_exactly_once"] for file in dsp["files"]), dsp["files"]
    # the claim, the request marker and the completion notes: none outlives the archiving
    left = [
        variable["key"]
        for named in (submission_uuid, dsp["id"])
        for variable in airflow_stack.api.json(
            "GET", "/variables", params={"variable_key_pattern": named}
        )["variables"]
    ]
    assert left == []


def test_an_archived_submission_is_reported_not_redone(
    airflow_stack: AirflowStack, archived
) -> None:
    submission_uuid, _, _ = archived
    run_id, run = airflow_stack.archive(submission_uuid)
    assert run["state"] == "success"
    states = airflow_stack.states(run_id)
    assert states["check_submission"] == ["skipped"]
    assert states["request_archive"] == ["skipped"]
    assert "is Archived: already archived, nothing to do" in airflow_stack.task_log(
        run_id, "check_submission"
    )
    only_dsp_submission(airflow_stack, submission_uuid)


def test_an_unknown_submission_fails_with_a_clear_message(airflow_stack: AirflowStack) -> None:
    unknown = str(uuid.uuid4())
    run_id, run = airflow_stack.archive(unknown)
    assert run["state"] == "failed"
    assert airflow_stack.states(run_id)["check_submission"] == ["failed"]
    message = f"submission {unknown} not found in sandbox"
    assert message in airflow_stack.task_log(run_id, "check_submission")
    assert message in airflow_stack.task_log(run_id, "report")


def test_a_dry_run_changes_nothing(airflow_stack: AirflowStack) -> None:
    (submission_uuid,) = airflow_stack.sandbox.seed(jobs=["plain"], reads=50)
    run_id, run = airflow_stack.archive(submission_uuid, dry_run=True)
    assert run["state"] == "success"
    summary = airflow_stack.sandbox.submission_summary(submission_uuid)
    assert summary["dsp_submissions"] == []
    assert summary["envelope_state"] == "Archiving"
    assert "dry run" in airflow_stack.task_log(run_id, "request_archive")


def test_a_malformed_uuid_is_refused_at_the_door(airflow_stack: AirflowStack) -> None:
    response = airflow_stack.api.request(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        json={"logical_date": None, "conf": {"submission_uuid": "1234; rm -rf /"}},
    )
    assert response.status_code == 400, response.text
    assert "submission_uuid" in response.text
