"""A run that archived its submission leaves none of its Variables behind.

``complete_submission`` notes its request and the write-back's first sighting in Variables keyed
by DSP submission; they were never removed, so Airflow's Variables page grew by two entries per
archived submission. Once the run saw DSP Completed and the envelope Archived nothing reads them.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from hca_archive.orchestration import archive_dag, run_claims
from hca_archive.orchestration.archive_dag import completion_marker, writeback_note
from tests.archiving.test_completion import DSP_UUID, UUID, FakeHook, FakeTi, Services

RUN_ID = "manual__archived"
CLAIM = run_claims.claim_key("dev", UUID)
MARKER = completion_marker("dev", DSP_UUID)
SEEN = writeback_note("dev", DSP_UUID)
COMPLETED = {"accessions": [{"type": "project", "alias": "HCA_project_1", "accession": "S-1"}]}
# Another submission's notes, and the sweep's settings: never this run's to remove.
OTHERS = {
    completion_marker("dev", "0e0c0c0e-0000-4000-8000-000000000002"): 1.0,
    writeback_note("prod", DSP_UUID): 1.0,
    "hca_archive_request__dev__0e0c0c0e-0000-4000-8000-000000000003": {"requests": 1},
    "hca_archive_sweep_dev_params": '{"runner": "lsf"}',
}


class ReportTi:
    dag_id = "archive_submission"
    run_id = RUN_ID

    def __init__(self, xcoms: dict[str, Any]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


def report(
    monkeypatch: pytest.MonkeyPatch,
    dsp_uuid: str | None = DSP_UUID,
    completion: Any = COMPLETED,
    failed: bool = False,
) -> dict[str, Any]:
    """The report task of run ``RUN_ID``, its audit record stood in for."""

    def build_and_publish_report(context: Any) -> dict[str, Any]:
        if failed:
            raise AirflowFailException("run failed at step wait_for_completion: gave up waiting")
        return {"dsp_submission": dsp_uuid}

    monkeypatch.setattr(archive_dag, "build_and_publish_report", build_and_publish_report)
    ti = ReportTi({"request_archive": {"dsp_uuid": dsp_uuid}, "wait_for_completion": completion})
    params = {"environment": "dev", "submission_uuid": UUID, "dry_run": False}
    return archive_dag.report.function(params=params, run_id=RUN_ID, ti=ti)


def noted(variables: dict[str, Any]) -> dict[str, Any]:
    variables.update({CLAIM: RUN_ID, MARKER: 1.0, SEEN: 2.0, **OTHERS})
    return variables


def test_an_archived_run_removes_its_claim_and_completion_notes(
    monkeypatch: pytest.MonkeyPatch, airflow_variables: dict[str, Any]
) -> None:
    noted(airflow_variables)
    assert report(monkeypatch) == {"dsp_submission": DSP_UUID}
    assert airflow_variables == OTHERS


@pytest.mark.parametrize(
    ("dsp_uuid", "completion"),
    [
        (None, None),  # it left the submission to another run at work, or a dry run
        (DSP_UUID, None),  # a dry run that found the record; or the wait marked success by hand
    ],
)
def test_a_run_that_did_not_see_the_submission_archived_keeps_the_notes(
    monkeypatch: pytest.MonkeyPatch,
    airflow_variables: dict[str, Any],
    dsp_uuid: str | None,
    completion: Any,
) -> None:
    """The run at work (or a wrangler clearing the completion later) still reads them."""
    noted(airflow_variables)[CLAIM] = "manual__at_work"
    report(monkeypatch, dsp_uuid, completion)
    assert airflow_variables == {CLAIM: "manual__at_work", MARKER: 1.0, SEEN: 2.0, **OTHERS}


def test_a_failed_run_keeps_its_claim_and_notes(
    monkeypatch: pytest.MonkeyPatch, airflow_variables: dict[str, Any]
) -> None:
    """A wrangler clears its failed task: complete_submission must know it asked already."""
    noted(airflow_variables)
    with pytest.raises(AirflowFailException):
        report(monkeypatch, failed=True)
    assert airflow_variables == {CLAIM: RUN_ID, MARKER: 1.0, SEEN: 2.0, **OTHERS}


def test_a_note_that_cannot_be_removed_is_only_logged(
    monkeypatch: pytest.MonkeyPatch,
    airflow_variables: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import airflow.sdk

    noted(airflow_variables)
    kept = airflow.sdk.Variable.delete

    def delete(key: str) -> None:
        if key == MARKER:
            raise ConnectionError("the API server did not answer")
        kept(key)

    monkeypatch.setattr(airflow.sdk.Variable, "delete", delete)
    with caplog.at_level(logging.WARNING):
        assert report(monkeypatch) == {"dsp_submission": DSP_UUID}
    assert f"could not remove the Variable {MARKER}" in caplog.text
    assert airflow_variables == {MARKER: 1.0, **OTHERS}  # the rest removed all the same


def test_complete_submission_cleared_after_the_notes_are_gone_asks_and_notes_nothing(
    monkeypatch: pytest.MonkeyPatch, airflow_variables: dict[str, Any]
) -> None:
    services = Services(status="Completed", envelope_state="Archived")
    monkeypatch.setattr(archive_dag, "_hook", lambda context: FakeHook(services))
    context = {"ti": FakeTi(), "params": {"environment": "dev", "submission_uuid": UUID}}
    outcome = archive_dag.complete_submission.function(**context)
    assert outcome == "DSP submission already Completed; not completed again"
    assert services.completes == []
    assert airflow_variables == {}
