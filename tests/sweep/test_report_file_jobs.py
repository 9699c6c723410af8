"""A file-job task that failed must still tell the report which job failed and which
files its batch did upload (partial success of a mapped task)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from hca_archive.orchestration import report as report_module
from hca_archive.orchestration.notifications import describe_run
from hca_archive.orchestration.runners import local

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
PARAMS = {"submission_uuid": UUID, "environment": "dev", "runner": "local", "dry_run": False}
BATCH = [
    {"manifest_id": "m1", "files": [{"name": "a.fastq.gz"}]},
    {"manifest_id": "m2", "files": [{"name": "b.fastq.gz"}]},
]
RESULT = {  # run-job's answer for the batch: the first job uploaded, the second failed
    "jobs": [
        {
            "index": 0,
            "label": "m1/a.fastq.gz",
            "status": "succeeded",
            "files": [{"name": "a.fastq.gz", "bytes": 10, "md5": "0" * 32, "upload": "uploaded"}],
            "seconds": {"upload": 1},
        },
        {"index": 1, "label": "m2/b.fastq.gz", "status": "failed", "error": "md5 mismatch"},
    ],
    "succeeded": 1,
    "failed": 1,
}


class Ti:
    """One task instance's XCom, as the Task SDK keeps it, and the run's task states."""

    dag_id = "archive_submission"
    run_id = "manual__2026-11-29T10:00:00+00:00"
    try_number = 1

    def __init__(self, store: dict[tuple[str, str, int], Any], task_id: str, map_index: int):
        self.store, self.task_id, self.map_index = store, task_id, map_index

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key, self.map_index)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        values = [
            v for (t, k, _), v in sorted(self.store.items(), key=str) if (t, k) == (task_ids, key)
        ]
        if not values:
            return None
        return values if task_ids in report_module.FILE_JOB_STEPS or key == "step" else values[0]

    def get_task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str]]:
        return {self.run_id: {"check_submission": "success", "run_local_0": "failed"}}


def test_a_failed_file_job_task_reports_its_failed_job_and_uploaded_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HCA_ARCHIVE_WORKDIR", str(tmp_path))
    monkeypatch.setattr(local.LocalFileJobOperator, "_run", lambda self, *args: RESULT)
    import hca_archive.orchestration.hooks as hooks

    monkeypatch.setattr(
        hooks, "HcaArchiveHook", lambda env: SimpleNamespace(file_job_credentials=lambda: {})
    )
    store: dict[tuple[str, str, int], Any] = {}
    operator = local.LocalFileJobOperator(task_id="run_local", batch=BATCH, environment="dev")
    ti = Ti(store, "run_local", 0)
    with pytest.raises(AirflowException, match="1 file job"):
        operator.execute({"ti": ti, "params": PARAMS})

    context = {
        "ti": Ti(store, "report", -1),
        "dag_run": SimpleNamespace(run_type="manual", start_date=None),
        "params": PARAMS,
    }
    report = report_module.collect_report(context)
    assert report["failed_jobs"] == [{"job": "m2/b.fastq.gz", "error": "md5 mismatch"}]
    assert [file["name"] for file in report["files"]] == ["a.fastq.gz"]
    text = describe_run(report, False).text
    assert "Failed job m2/b.fastq.gz: md5 mismatch" in text
    assert "Files uploaded or found on DSP: 1 (10 bytes)" in text


def test_entities_without_an_accession_are_not_counted_or_listed_as_accessions() -> None:
    """An entity DSP did not accession (an ArchiveDisabled item, say) has ``accession`` None."""
    report = {
        "run_id": "sweep__dev__" + UUID,
        "params": PARAMS,
        "dsp_submission": "d5p",
        "steps": [],
        "files": [],
        "failed_jobs": [],
        "accessions": [
            {"type": "study", "alias": "HCA_study_1", "accession": "ERP000123"},
            {"type": "sample", "alias": "HCA_sample_1", "accession": None},
        ],
    }
    message = describe_run(report, True)
    assert message.subject.endswith(": archived (1 accessions)")
    assert "None" not in message.text
    assert not any("None" in line for line in report_module.render_story(report))


def test_a_mapped_steps_failure_is_told_by_its_failed_tasks_not_its_successful_ones() -> None:
    store: dict[tuple[str, str, int], Any] = {
        ("run_local", "step", 0): {
            "state": "succeeded",
            "outcome": "m1/a.fastq.gz: 1 job(s) archived",
        },
        ("run_local", "step", 1): {"state": "failed", "outcome": "run-job exited 2: disk full"},
    }
    context = {
        "ti": Ti(store, "report", -1),
        "dag_run": SimpleNamespace(run_type="manual", start_date=None),
        "params": PARAMS,
    }
    report = report_module.collect_report(context)
    (step,) = [step for step in report["steps"] if step["step"] == "run_local"]
    assert step["failures"] == ["run-job exited 2: disk full"]
    assert len(step["outcomes"]) == 2  # the story and the audit record keep every task's outcome
    text = describe_run(report, False).text
    assert "Failed step: run_local: run-job exited 2: disk full" in text
    assert "archived" not in text
