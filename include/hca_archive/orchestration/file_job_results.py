"""What every runner does with a file job's result JSON (shape: docs/architecture.md)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from hca_archive.archiving import batch_label

# How long a runner lets a file job run before stopping it. Airflow applies no execution_timeout
# while a task is deferred, so the LSF and Kubernetes runners bound their own waits.
FILE_JOB_TIME_LIMIT = timedelta(hours=48)
# A failed task pushes no return value: its result goes to the report under this key instead.
FAILED_RESULT_XCOM_KEY = "failed_file_jobs"


def work_key(context: Any) -> str:
    """A directory name unique to this task instance, made of safe characters only.

    The readable part alone could be shared: run ids that differ only in characters it
    replaces (``:`` and ``_``, say) would share a work directory and run each other's plan.
    """
    ti = context["ti"]
    raw = f"{ti.dag_id}/{ti.run_id}/{ti.map_index}"
    readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", raw).strip("._")
    return f"{readable}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def label_task(context: Any, batch: list[dict[str, Any]]) -> str:
    """Name the mapped task in the UI after its job (see the DAG's ``map_index_template``)."""
    label = batch_label(batch)
    context["job_label"] = label
    return label


def keep_failed_result(ti: Any, result: Any) -> None:
    """Give the report a failed batch's result: which job failed, which files did upload."""
    if ti is not None and isinstance(result, dict) and result.get("jobs"):
        ti.xcom_push(key=FAILED_RESULT_XCOM_KEY, value=result)


def check_result(result: dict[str, Any], log: Any, ti: Any = None) -> None:
    """Log one line per job and file; raise naming every failed job (kept for the report)."""
    for job in result.get("jobs", []):
        if job.get("status") == "succeeded":
            for file in job.get("files", []):
                log.info(
                    "%s: %s %s bytes md5 %s (%s)",
                    job.get("label"),
                    file.get("name"),
                    file.get("bytes"),
                    file.get("md5"),
                    file.get("upload"),
                )
        else:
            log.error("%s failed: %s", job.get("label"), job.get("error"))
    failed = [job for job in result.get("jobs", []) if job.get("status") != "succeeded"]
    if failed or not result.get("jobs"):
        keep_failed_result(ti, result)
        reasons = "; ".join(f"{job.get('label')}: {job.get('error')}" for job in failed)
        message = f"{len(failed)} file job(s) failed: {reasons or 'no result'}"
        if failed and all(job.get("retryable") is False for job in failed):
            # the same inputs would fail the same way: no retry, the wrangler fixes the data
            raise AirflowFailException(f"{message} (not retried: running again cannot fix it)")
        raise AirflowException(message)
