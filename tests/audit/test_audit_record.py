"""The audit record of an archiving run holds what an auditor asks: who, what, how it went, files.

A demo-like run (a 10x V2 conversion and a plain file) on the session stack; every field is
checked against what the sandbox's DSP holds, not against the report's own story.
"""

from __future__ import annotations

from typing import Any

import pytest

from hca_archive.clients.aap import AapTokenSource
from hca_archive.clients.dsp import DspClient
from tests.fixtures.airflow import AirflowStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REMOTE_STEPS = (
    "check_submission",
    "request_archive",
    "check_metadata",
    "fetch_plan",
    "run_local",
    "wait_for_validation",
    "complete_submission",
    "wait_for_completion",
)
OTHER_RUNNERS = {"run_lsf", "run_kubernetes"}
FILE_JOB_PHASES = {"check", "download", "convert", "verify", "upload"}


@pytest.fixture(scope="module")
def archived(airflow_stack: AirflowStack) -> dict[str, Any]:
    (submission_uuid,) = airflow_stack.sandbox.seed(jobs=["10xV2", "plain"], reads=200)
    run_id, run = airflow_stack.archive(submission_uuid, alias_prefix="AUDIT")
    assert run["state"] == "success", airflow_stack.task_log(run_id, "report")
    (dsp,) = airflow_stack.sandbox.submission_summary(submission_uuid)["dsp_submissions"]
    return {
        "uuid": submission_uuid,
        "run_id": run_id,
        "record": airflow_stack.audit_record(run_id),
        "dsp": dsp,
    }


def test_it_names_the_run_and_who_triggered_it(archived: dict[str, Any]) -> None:
    record = archived["record"]
    assert record["dag_id"] == "archive_submission"
    assert record["run_id"] == archived["run_id"]
    assert record["triggered_by"]["user"] == "admin"
    assert "manual" in record["triggered_by"]["run_type"].lower()


def test_it_keeps_every_parameter_of_the_run(archived: dict[str, Any]) -> None:
    assert archived["record"]["params"] == {
        "submission_uuid": archived["uuid"],
        "environment": "sandbox",
        "runner": "local",
        "alias_prefix": "AUDIT",
        "exclude_types": [],
        "dry_run": False,
    }


def test_it_tells_each_remote_steps_outcome_and_duration(archived: dict[str, Any]) -> None:
    record = archived["record"]
    steps = {step["step"]: step for step in record["steps"]}
    for name in OTHER_RUNNERS & set(steps):  # branches not chosen
        assert set(steps.pop(name)["states"]) == {"skipped"}, name
    assert tuple(steps) == REMOTE_STEPS
    for name, step in steps.items():
        assert step["states"] and set(step["states"]) == {"success"}, name
        assert len(step["outcomes"]) == len(step["states"]), name
        assert all(step["outcomes"]), name
        assert step["seconds"] >= 0, name
    assert steps["run_local"]["seconds"] > 0
    assert record["dsp_submission"] == archived["dsp"]["id"]
    assert archived["dsp"]["id"] in " ".join(steps["request_archive"]["outcomes"])


def test_it_lists_each_file_with_the_bytes_and_md5_dsp_holds(
    airflow_stack: AirflowStack, archived: dict[str, Any]
) -> None:
    sandbox = airflow_stack.sandbox
    dsp = DspClient(
        sandbox.dsp_url, AapTokenSource(sandbox.aap_url, sandbox.aap_username, sandbox.aap_password)
    )
    files = archived["record"]["files"]
    assert {file["name"] for file in files} == {file["name"] for file in archived["dsp"]["files"]}
    for file in files:
        held = dsp.find_file(archived["dsp"]["id"], file["name"])
        assert held is not None, file["name"]
        assert file["bytes"] == held["totalSize"] > 0, file["name"]
        assert file["md5"] == held["checksum"], file["name"]
        assert file["upload"] == "uploaded", file["name"]
        assert set(file["seconds"]) == FILE_JOB_PHASES, file["name"]
    assert archived["record"]["failed_jobs"] == []


def test_it_lists_every_accession(archived: dict[str, Any]) -> None:
    accessions = archived["record"]["accessions"]
    assert {a["alias"]: a["accession"] for a in accessions} == archived["dsp"]["accessions"]
    assert all(a["alias"].startswith("AUDIT_") and a["type"] for a in accessions)


def test_it_times_the_whole_run(archived: dict[str, Any]) -> None:
    record = archived["record"]
    assert record["started"] < record["ended"]
    assert record["seconds"] > 0


def test_it_names_the_run_type_in_plain_words(archived: dict[str, Any]) -> None:
    assert archived["record"]["triggered_by"]["run_type"] == "manual"
