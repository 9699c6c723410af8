"""Airflow's overhead per file job: LocalExecutor (SQLite, standalone) beside Celery (Postgres).

Archives one 200-job submission of tiny files (``plain`` jobs, 20 reads) on each stack, against
a private sandbox, and prints side by side: wall time of the run, the span of its file-job phase
(first run_local start to last end) and that per job, the mean run_local task duration (for tiny
files nearly all overhead: task process start, API calls, run-job's start) and the mean wait
between queued and started. The DAG caps run_local tasks per run (max_active_tis_per_dagrun), and
one machine is one machine: this measures overhead, not scale-out.

Target: both runs succeed with every file uploaded exactly once; times are reported, not judged.
Needs the machine's Postgres and Redis (redis db BENCH_REDIS_DB, default 8). BENCH_SCALEOUT_JOBS
changes the job count (default 200).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hca_archive.clients.airflow_api import AirflowApi
from hca_archive.devstack.airflow_celery import AirflowCelery, CelerySettings
from hca_archive.devstack.airflow_standalone import AirflowStandalone
from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.sandbox.process import SandboxInfo, start_sandbox

DAG_ID = "archive_submission"
JOBS = int(os.environ.get("BENCH_SCALEOUT_JOBS", "200"))
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "8"))
READS = 20
# The scheduled sweep would start a second run for the seeded submission.
NO_SWEEP = {"HCA_ARCHIVE_SWEEP_SCHEDULE": "none"}
RUN_TIMEOUT = 3600


@dataclass(frozen=True)
class Outcome:
    stack: str
    wall: float
    file_job_span: float
    task_seconds: float
    queue_seconds: float
    problems: list[str]


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def archive(name: str, api: AirflowApi, sandbox: SandboxInfo) -> Outcome:
    api.wait_for_dag(DAG_ID)
    (submission,) = sandbox.seed(jobs=["plain"] * JOBS, reads=READS)
    started = time.monotonic()
    run_id = api.trigger(DAG_ID, {"submission_uuid": submission})
    run = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    wall = time.monotonic() - started
    tasks = [ti for ti in api.task_instances(DAG_ID, run_id) if ti["task_id"] == "run_local"]
    problems = [] if run["state"] == "success" else [f"{name}: run {run['state']}"]
    dsp = sandbox.submission_summary(submission)["dsp_submissions"]
    files = dsp[0]["files"] if len(dsp) == 1 else []
    if len(files) != JOBS or not all(file["uploaded_exactly_once"] for file in files):
        problems.append(f"{name}: not every one of {JOBS} files was uploaded exactly once")
    durations = [ti["duration"] for ti in tasks if ti.get("duration") is not None]
    waits = [w for ti in tasks if (w := _seconds(ti.get("queued_when"), ti.get("start_date")))]
    starts = [ti["start_date"] for ti in tasks if ti.get("start_date")]
    ends = [ti["end_date"] for ti in tasks if ti.get("end_date")]
    span = _seconds(min(starts), max(ends)) if starts and ends else None
    return Outcome(
        name,
        wall,
        span if span is not None else float("nan"),
        statistics.fmean(durations) if durations else float("nan"),
        statistics.fmean(waits) if waits else float("nan"),
        problems,
    )


def measure(name: str, make: Callable[[Path, dict[str, str]], Any], work: Path) -> Outcome:
    """Run one stack (made by ``make(home, connections)``) against a fresh sandbox."""
    print(f"{name}: starting ...", flush=True)
    with start_sandbox(work / f"sandbox-{name}") as sandbox:
        connections = sandbox_connections(sandbox.endpoints)
        stack = make(work / f"airflow-{name}", {**connections, **NO_SWEEP})
        api = stack.start()
        try:
            return archive(name, api, sandbox)
        finally:
            stack.stop()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    try:
        outcomes = [
            measure("LocalExecutor (SQLite)", AirflowStandalone, work),
            measure(
                "CeleryExecutor (Postgres, 2 workers)",
                lambda home, env: AirflowCelery(home, env, CelerySettings(redis_db=REDIS_DB)),
                work,
            ),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{JOBS} plain jobs of {READS} reads, one run of archive_submission per stack")
    print(
        f"{'stack':38s} {'wall s':>7s} {'file jobs s':>11s} {'s/job':>6s} "
        f"{'task s':>7s} {'queued s':>8s}"
    )
    for o in outcomes:
        print(
            f"{o.stack:38s} {o.wall:7.1f} {o.file_job_span:11.1f} {o.file_job_span / JOBS:6.2f} "
            f"{o.task_seconds:7.2f} {o.queue_seconds:8.2f}"
        )
    print(
        "wall: trigger to run finished; file jobs: first run_local start to last end (s/job:"
        " that per job);\ntask: mean run_local duration; queued: mean wait from queued to started"
    )
    problems = [problem for o in outcomes for problem in o.problems]
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0
