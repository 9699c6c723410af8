"""A run that failed, was cleared by a wrangler and then succeeded keeps the audit
record of its failed attempt (which DSP submission, which step failed and why)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from hca_archive.orchestration import report as report_module

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
PARAMS = {"submission_uuid": UUID, "environment": "dev", "runner": "local", "dry_run": False}


class Ti:
    dag_id = "archive_submission"
    run_id = "manual__2026-11-29T10:00:00+00:00"

    def __init__(self, try_number: int, xcoms: dict, states: dict) -> None:
        self.try_number, self.xcoms, self.states = try_number, xcoms, states

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def get_task_states(self, dag_id: str, run_ids: list[str]) -> dict:
        return {self.run_id: self.states}


def test_clearing_a_failed_run_keeps_the_audit_record_of_the_failed_attempt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HCA_ARCHIVE_AUDIT_URL", tmp_path.as_uri())
    monkeypatch.setattr(report_module, "set_run_note", lambda ti, note: None)
    dag_run = SimpleNamespace(run_type="manual", start_date=None)
    failed = Ti(
        1,
        {
            ("request_archive", "return_value"): {"dsp_uuid": "first-dsp"},
            ("check_metadata", "step"): {"outcome": "bad taxon", "seconds": 1},
        },
        {"check_submission": "success", "request_archive": "success", "check_metadata": "failed"},
    )
    with pytest.raises(AirflowFailException):
        report_module.build_and_publish_report({"ti": failed, "dag_run": dag_run, "params": PARAMS})

    # the wrangler fixes the metadata and clears the run; the report runs again (a new try)
    rerun = Ti(
        2,
        {("request_archive", "return_value"): {"dsp_uuid": "first-dsp"}},
        {"check_submission": "success", "request_archive": "success", "check_metadata": "success"},
    )
    report_module.build_and_publish_report({"ti": rerun, "dag_run": dag_run, "params": PARAMS})

    records = [json.loads(path.read_text()) for path in tmp_path.rglob("*.json")]
    outcomes = [
        outcome
        for record in records
        for step in record["steps"]
        if step["step"] == "check_metadata"
        for outcome in step["outcomes"]
    ]
    assert "bad taxon" in outcomes, f"the failed attempt's record is gone: {records}"


def test_a_run_deleted_and_started_again_under_its_id_keeps_the_first_runs_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The sweep's run ids repeat: a wrangler deletes a failed sweep run, the next sweep starts a
    run of the same id, whose first report is try 1 again."""
    monkeypatch.setenv("HCA_ARCHIVE_AUDIT_URL", tmp_path.as_uri())
    monkeypatch.setattr(report_module, "set_run_note", lambda ti, note: None)
    states = {"check_submission": "success", "request_archive": "success"}
    for dsp_uuid in ("deleted-runs-dsp", "new-runs-dsp"):
        ti = Ti(1, {("request_archive", "return_value"): {"dsp_uuid": dsp_uuid}}, states)
        ti.run_id = "sweep__dev__" + UUID
        dag_run = SimpleNamespace(run_type="manual", start_date=None)
        report_module.build_and_publish_report({"ti": ti, "dag_run": dag_run, "params": PARAMS})

    attempts = [json.loads(path.read_text()) for path in tmp_path.rglob("try-*.json")]
    assert sorted(record["dsp_submission"] for record in attempts) == [
        "deleted-runs-dsp",
        "new-runs-dsp",
    ]
    latest = json.loads((tmp_path / "archive_submission" / f"sweep__dev__{UUID}.json").read_text())
    assert latest["dsp_submission"] == "new-runs-dsp"
