"""The per-run report: what each step did, every file with bytes and md5, the accessions.

Written to the task log as a story and, as JSON, to the audit location (``<dag id>/<run id>.json``,
the latest, and ``<dag id>/<run id>/try-<n>.json`` for each attempt): a directory or any
object storage URL (``HCA_ARCHIVE_AUDIT_URL``, e.g. ``s3://bucket/audit``; default
``$AIRFLOW_HOME/hca-archive-audit``). The report task fails the run when a step failed, naming it.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from hca_archive.orchestration.file_job_results import FAILED_RESULT_XCOM_KEY
from hca_archive.orchestration.step_record import STEP_XCOM_KEY

log = logging.getLogger(__name__)

STEPS = (
    "check_submission",
    "request_archive",
    "check_metadata",
    "fetch_plan",
    "run_local",
    "run_lsf",
    "run_kubernetes",
    "wait_for_validation",
    "complete_submission",
    "wait_for_completion",
)
FILE_JOB_STEPS = ("run_local", "run_lsf", "run_kubernetes")
FAILED_STATES = {"failed", "upstream_failed"}
NOTE_CONN_ID = "hca_airflow_api"
NOTE_LIMIT = 1000  # characters Airflow keeps in a note


def audit_root() -> ObjectStoragePath:
    default = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "hca-archive-audit"
    url = os.environ.get("HCA_ARCHIVE_AUDIT_URL") or default.as_uri()
    return ObjectStoragePath(url, conn_id=os.environ.get("HCA_ARCHIVE_AUDIT_CONN_ID"))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [item for item in value if item is not None]


def _task_states(ti: Any) -> dict[str, list[str]]:
    """State of every task (all map indexes) of this run, by task id."""
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    by_task: dict[str, list[str]] = {}
    for key, state in states.items():
        task_id = key.rsplit("_", 1)[0] if key.rsplit("_", 1)[-1].isdigit() else key
        by_task.setdefault(task_id if task_id in STEPS else key, []).append(str(state))
    return by_task


def collect_report(context: Any) -> dict[str, Any]:
    ti = context["ti"]
    dag_run = context["dag_run"]
    steps = []
    states = _task_states(ti)
    for task_id in STEPS:
        records = _as_list(ti.xcom_pull(task_ids=task_id, key=STEP_XCOM_KEY))
        if not records and task_id not in states:
            continue
        steps.append(
            {
                "step": task_id,
                "states": states.get(task_id, []),
                "seconds": round(sum(record.get("seconds", 0) for record in records), 3),
                "outcomes": [record.get("outcome") for record in records],
                # a mapped step's failure is told by its failed tasks, not its successful ones
                "failures": [
                    record.get("outcome") for record in records if record.get("state") == "failed"
                ],
            }
        )
    jobs = [
        job
        for task_id in FILE_JOB_STEPS
        for key in ("return_value", FAILED_RESULT_XCOM_KEY)  # a failed task returns nothing
        for result in _as_list(ti.xcom_pull(task_ids=task_id, key=key))
        for job in result.get("jobs", [])
    ]
    completion = ti.xcom_pull(task_ids="wait_for_completion") or {}
    run_type = getattr(dag_run, "run_type", None)
    started = getattr(dag_run, "start_date", None)
    ended = datetime.now(UTC)
    dsp = ti.xcom_pull(task_ids="request_archive") or {}
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "triggered_by": {
            "run_type": getattr(run_type, "value", run_type),
            "user": getattr(dag_run, "triggering_user_name", None),
        },
        "started": started.isoformat() if started else None,
        "ended": ended.isoformat(),
        "seconds": round((ended - started).total_seconds(), 3) if started else None,
        "params": dict(context["params"]),
        "dsp_submission": dsp.get("dsp_uuid"),
        "steps": steps,
        "files": [
            dict(file, job=job.get("label"), seconds=job.get("seconds"))
            for job in jobs
            for file in job.get("files", [])
        ],
        "failed_jobs": [
            {"job": job.get("label"), "error": job.get("error")}
            for job in jobs
            if job.get("status") != "succeeded"
        ],
        "accessions": completion.get("accessions", []),
    }


def failure_outcomes(step: dict[str, Any]) -> list[str]:
    """Why a failed step failed: its failed tasks' outcomes (all outcomes in older records)."""
    return step.get("failures") or step["outcomes"]


def render_story(report: dict[str, Any]) -> list[str]:
    params = report["params"]
    lines = [
        f"submission {params['submission_uuid']} in {params['environment']} "
        f"(runner {params['runner']}, dry run {params['dry_run']}); "
        f"DSP submission {report['dsp_submission'] or '-'}"
    ]
    for step in report["steps"]:
        outcome = "; ".join(filter(None, step["outcomes"])) or "-"
        lines.append(f"{step['step']}: {','.join(step['states'])} in {step['seconds']}s: {outcome}")
    for file in report["files"]:
        lines.append(
            f"file {file['name']}: {file['bytes']} bytes md5 {file['md5']} ({file['upload']})"
        )
    for accession in report["accessions"]:
        lines.append(
            f"accession {accession['type']} {accession['alias']}: "
            f"{accession['accession'] or 'none (not accessioned)'}"
        )
    return lines


def render_note(report: dict[str, Any]) -> str:
    """The report in the few hundred characters a run's note holds."""
    failed = [step["step"] for step in report["steps"] if FAILED_STATES & set(step["states"])]
    outcome = f"failed at {failed[0]}" if failed else "finished"
    accessions = ", ".join(a["accession"] for a in report["accessions"] if a["accession"])
    note = (
        f"{report['params']['submission_uuid']} ({report['params']['environment']}): {outcome}; "
        f"DSP submission {report['dsp_submission'] or '-'}; {len(report['files'])} files uploaded; "
        f"accessions: {accessions or '-'}"
    )
    return note if len(note) <= NOTE_LIMIT else note[: NOTE_LIMIT - 3] + "..."


def set_run_note(ti: Any, note: str) -> None:
    """Put the report's gist on the run as its note, through Airflow's REST API.

    Tasks cannot set a note themselves; connection ``hca_airflow_api`` (host: the API server's
    URL, login and password of a user allowed to edit runs) lets them. Without it: no note.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(NOTE_CONN_ID)
    except AirflowNotFoundException:
        log.info("no connection %s: the report is not set as the run's note", NOTE_CONN_ID)
        return
    from hca_archive.clients.airflow_api import AirflowApi, AirflowApiError
    from hca_archive.http import ServiceError

    path = f"/dags/{ti.dag_id}/dagRuns/{quote(ti.run_id, safe='')}"
    try:
        api = AirflowApi(conn.host or "", conn.login or "", conn.password or "", timeout=30)
        api.json("PATCH", path, params={"update_mask": "note"}, json={"note": note}, resend=True)
    except (AirflowApiError, ServiceError, ValueError) as error:  # the note is a nicety
        log.warning("could not set the run's note: %s", error)
        return
    log.info("report set as the run's note")


def build_and_publish_report(context: Any) -> dict[str, Any]:
    ti = context["ti"]
    report = collect_report(context)
    for line in render_story(report):
        log.info("%s", line)
    set_run_note(ti, render_note(report))
    text = json.dumps({**report, "report_try": ti.try_number}, indent=2, default=str)
    target = audit_root() / ti.dag_id / f"{ti.run_id}.json"
    # the latest record at <run id>.json; every attempt (a cleared run reports again, under a
    # new try number) also under <run id>/try-<n>.json, so a rerun never erases a failure
    attempt = audit_root() / ti.dag_id / ti.run_id / f"try-{ti.try_number}.json"
    for path in (attempt, target):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    log.info("audit record written to %s (this attempt: %s)", target, attempt)
    failed = [step for step in report["steps"] if FAILED_STATES & set(step["states"])]
    if failed:
        first = failed[0]
        reason = "; ".join(filter(None, failure_outcomes(first))) or "see its log"
        raise AirflowFailException(f"run failed at step {first['step']}: {reason}")
    return report
