"""The per-run report: what each step did, every file with bytes and md5, the accessions.

Written to the task log as a story and, as JSON, to the audit location (``<dag id>/<run id>.json``,
the latest, and ``<dag id>/<run id>/try-<n>.json`` for each attempt, ``try-<n>.<k>.json`` for a
later run under a deleted run's id): a directory or any object storage URL
(``HCA_ARCHIVE_AUDIT_URL``, e.g. ``s3://bucket/audit``; default
``$AIRFLOW_HOME/hca-archive-audit``). The report task fails the run when a step failed, naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
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
# Lines of one kind (files, accessions, failures) the story, a failure and a notification list;
# beyond it they give counts and the first ones: the audit record keeps every one.
DETAIL_LIMIT = 20
# What starts Markdown in a run's note (a link, an image, emphasis, a heading, an autolink).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~:.])")


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


def failure_reason(step: dict[str, Any]) -> str:
    """``failure_outcomes`` as one text: the first ``DETAIL_LIMIT`` and a count of the rest."""
    return "; ".join(capped(list(filter(None, failure_outcomes(step)))))


def capped(items: list[str], what: str = "", limit: int = DETAIL_LIMIT) -> list[str]:
    """The first ``limit`` items and, instead of the others, how many there are."""
    if len(items) <= limit:
        return items
    return [*items[:limit], " ".join(filter(None, [f"... and {len(items) - limit} more", what]))]


def counts(values: Iterable[str]) -> str:
    """``"2 failed, 498 success"``: failed states first, then the most frequent."""
    counted = Counter(values).items()
    ordered = sorted(counted, key=lambda item: (item[0] not in FAILED_STATES, -item[1]))
    return ", ".join(f"{count} {value}" for value, count in ordered)


def render_story(report: dict[str, Any]) -> list[str]:
    # Imported here: the DAG file imports this module, and parsing loads no HTTP client.
    from hca_archive.http import one_line  # service text stays on its own line

    params = report["params"]
    lines = [
        f"submission {params['submission_uuid']} in {params['environment']} "
        f"(runner {params['runner']}, dry run {params['dry_run']}); "
        f"DSP submission {one_line(str(report['dsp_submission'] or '-'))}"
    ]
    for step in report["steps"]:
        states, outcomes = step["states"], list(filter(None, step["outcomes"]))
        shown = ",".join(states) if len(states) <= DETAIL_LIMIT else counts(states)
        if len(outcomes) <= DETAIL_LIMIT:
            outcome = "; ".join(outcomes) or "-"
        elif failures := list(filter(None, step.get("failures", []))):
            outcome = f"{len(failures)} of {len(outcomes)} failed: {failure_reason(step)}"
        else:
            outcome = f"{len(outcomes)} outcomes, each in the audit record"
        lines.append(f"{step['step']}: {shown} in {step['seconds']}s: {outcome}")
    files = report["files"]
    if len(files) > DETAIL_LIMIT:
        uploads = counts(one_line(str(file.get("upload"))) for file in files)
        total = sum(int(file.get("bytes") or 0) for file in files)
        lines.append(
            f"files: {len(files)}, {total} bytes ({uploads}); each with its md5 in the audit record"
        )
    else:
        for file in files:
            lines.append(
                one_line(
                    f"file {file['name']}: {file['bytes']} bytes md5 {file['md5']} "
                    f"({file['upload']})",
                    limit=500,
                )
            )
    entities = report["accessions"]
    described = [one_line(f"{entity['type']} {entity['alias']}", limit=200) for entity in entities]
    if len(entities) > DETAIL_LIMIT:
        accessioned = sum(1 for entity in entities if entity["accession"])
        types = counts(one_line(str(entity["type"]), limit=100) for entity in entities)
        lines.append(f"accessions: {accessioned} of {len(entities)} entities ({types})")
        lines += capped(
            [
                f"no accession for {name}"
                for name, entity in zip(described, entities, strict=True)
                if not entity["accession"]
            ]
        )
    else:
        for name, entity in zip(described, entities, strict=True):
            accession = one_line(str(entity["accession"] or "none (not accessioned)"), limit=100)
            lines.append(f"accession {name}: {accession}")
    return lines


def markdown_text(text: str) -> str:
    """Service text in a run's note, which Airflow renders as Markdown: one line, shown as it is
    (not a link, an image fetched from elsewhere, or a heading)."""
    from hca_archive.http import one_line

    return _MARKDOWN.sub(r"\\\1", one_line(text, limit=200))


def render_note(report: dict[str, Any]) -> str:
    """The report in the few hundred characters a run's note holds."""
    failed = [step["step"] for step in report["steps"] if FAILED_STATES & set(step["states"])]
    outcome = f"failed at {failed[0]}" if failed else "finished"
    accessions = ", ".join(
        markdown_text(str(a["accession"])) for a in report["accessions"] if a["accession"]
    )
    dsp = markdown_text(str(report["dsp_submission"])) if report["dsp_submission"] else "-"
    note = (
        f"{report['params']['submission_uuid']} ({report['params']['environment']}): {outcome}; "
        f"DSP submission {dsp}; {len(report['files'])} files uploaded; "
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


def attempt_path(folder: ObjectStoragePath, try_number: int) -> ObjectStoragePath:
    """``try-<n>.json`` in ``folder``, or ``try-<n>.<k>.json`` when a record holds that name.

    Run ids repeat (a failed sweep run deleted, the next sweep starts ``sweep__<env>__<uuid>``
    again, at try 1): the deleted run's records say what it did, and are never written over.
    """
    path = folder / f"try-{try_number}.json"
    again = 1
    while path.exists():
        again += 1
        path = folder / f"try-{try_number}.{again}.json"
    return path


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
    attempt = attempt_path(audit_root() / ti.dag_id / ti.run_id, ti.try_number)
    for path in (attempt, target):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    log.info("audit record written to %s (this attempt: %s)", target, attempt)
    failed = [step for step in report["steps"] if FAILED_STATES & set(step["states"])]
    if failed:
        first = failed[0]
        reason = failure_reason(first) or "see its log"
        raise AirflowFailException(f"run failed at step {first['step']}: {reason}")
    return report
