"""The archive DAG: its parse time, and the wall time of a 100-job plan on LocalExecutor.

Parse time is the time to import ``dags/archive_submission.py`` minus a bare ``airflow.sdk``
import, median of several fresh interpreters (target < 0.3 s). The 100-job plan uses tiny plain
files on Airflow standalone (SQLite, LocalExecutor) against the sandbox, so what it measures is
Airflow's and our per-job overhead; reported per job. Environment: BENCH_DAG_JOBS (default 100).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hca_archive.devstack.airflow_standalone import AirflowStandalone
from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.sandbox.process import start_sandbox

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "dags" / "archive_submission.py"
PARSE_TARGET_SECONDS = 0.3
PARSE_SAMPLES = 7
JOBS = int(os.environ.get("BENCH_DAG_JOBS", "100"))

_TIMED_IMPORT = """
import importlib.util, sys, time
start = time.perf_counter()
import airflow.sdk
sdk = time.perf_counter()
if sys.argv[1] == "dag":
    spec = importlib.util.spec_from_file_location("archive_submission", sys.argv[2])
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
print(sdk - start, time.perf_counter() - sdk)
"""


def parse_seconds() -> float:
    """Median over fresh interpreters of (import of the DAG file after airflow.sdk is loaded)."""
    env = dict(os.environ, AIRFLOW_HOME=tempfile.mkdtemp(prefix="bench-dag-"))
    samples = []
    for _ in range(PARSE_SAMPLES):
        out = subprocess.run(
            [sys.executable, "-c", _TIMED_IMPORT, "dag", str(DAG_FILE)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        samples.append(float(out[1]))
    return statistics.median(samples)


def plan_wall_time(jobs: int) -> tuple[str, float]:
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dag-")))
        sandbox = stack.enter_context(start_sandbox(tmp / "sandbox", "--plan-delay", "0.3"))
        (submission_uuid,) = sandbox.seed(jobs=["plain"] * jobs, reads=20)
        standalone = AirflowStandalone(tmp / "airflow", sandbox_connections(sandbox.endpoints))
        api = standalone.start()
        stack.callback(standalone.stop)
        api.wait_for_dag("archive_submission")
        started = time.monotonic()
        run_id = api.trigger("archive_submission", {"submission_uuid": submission_uuid})
        run = api.wait_for_run("archive_submission", run_id, 3600)
        return run["state"], time.monotonic() - started


def main() -> int:
    parse = parse_seconds()
    state, seconds = plan_wall_time(JOBS)
    rows = [
        ("DAG file parse beyond airflow.sdk", f"{parse:.3f} s", f"< {PARSE_TARGET_SECONDS} s"),
        (f"{JOBS}-job plan, LocalExecutor ({state})", f"{seconds:.1f} s", "-"),
        ("  per job", f"{seconds / JOBS:.2f} s", "-"),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'value':>10}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>10}  {target}")
    return 0 if parse < PARSE_TARGET_SECONDS and state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
