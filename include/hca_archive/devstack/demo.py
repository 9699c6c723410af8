"""``make demo``: archive one seeded submission on the embedded default, against the sandbox.

Starts the sandbox and Airflow standalone (SQLite, LocalExecutor) under ``.demo/``, triggers
``archive_submission`` through the REST API, waits, prints each step's outcome and the accessions,
and leaves both running so the UI can be explored (``make demo-stop`` ends them). Exits 0 only if
the run succeeded. A second ``make demo`` stops the first and starts afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from hca_archive.devstack.airflow_env import REPO_ROOT, USERNAME
from hca_archive.devstack.airflow_standalone import AirflowStandalone
from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.sandbox.lamanno import LAMANNO_ENV, default_lamanno_dir, lamanno_reads_present
from hca_archive.sandbox.process import SandboxInfo

DAG_ID = "archive_submission"
SYNTHETIC_JOBS = ["10xV2", "10xV3-noI1", "plain"]
RUN_TIMEOUT = 600


def stop_previous(demo_dir: Path) -> None:
    """End the process groups a previous demo left running."""
    pids_file = demo_dir / "pids.json"
    if not pids_file.exists():
        return
    for pid in json.loads(pids_file.read_text()).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    time.sleep(3)
    for pid in json.loads(pids_file.read_text()).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    pids_file.unlink()


def say(message: str) -> None:
    print(message, flush=True)


def demo_jobs() -> list[str]:
    """The synthetic jobs, and the real La Manno reads when they are there (they are kept out
    of the repository)."""
    folder = default_lamanno_dir()
    if lamanno_reads_present(folder):
        return [*SYNTHETIC_JOBS, "lamanno"]
    say(
        f"La Manno reads not found in {folder}: seeding synthetic reads only "
        f"(set ${LAMANNO_ENV} to the folder of their R1.fastq.gz and R2.fastq.gz)"
    )
    return SYNTHETIC_JOBS


def run_demo(demo_dir: Path, keep_running: bool) -> int:
    stop_previous(demo_dir)
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    started = time.monotonic()
    sandbox = SandboxInfo(demo_dir / "sandbox", options=("--plan-delay", "1"))
    sandbox.start()
    standalone = AirflowStandalone(demo_dir / "airflow", sandbox_connections(sandbox.endpoints))
    (demo_dir / "pids.json").write_text(json.dumps({"sandbox": sandbox.pid}))
    ran = False  # the UI is left up only to show a run; a failure before one stops everything
    try:
        say(f"sandbox up: archiver {sandbox.archiver_url}, DSP {sandbox.dsp_url}")
        jobs = demo_jobs()
        (submission_uuid,) = sandbox.seed(jobs=jobs, reads=2000)
        say(f"seeded ingest submission {submission_uuid} (Archiving) with jobs {jobs}")
        say("starting Airflow standalone (SQLite, LocalExecutor) ...")
        api = standalone.start()
        pids = {"sandbox": sandbox.pid, "airflow": standalone.pid}
        (demo_dir / "pids.json").write_text(json.dumps(pids))
        api.wait_for_dag(DAG_ID)
        run_id = api.trigger(DAG_ID, {"submission_uuid": submission_uuid})
        say(f"triggered {DAG_ID} run {run_id}; waiting ...")
        run = api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
        ran = True
        for ti in sorted(api.task_instances(DAG_ID, run_id), key=lambda ti: ti["start_date"] or ""):
            label = ti.get("rendered_map_index") or ""
            say(f"  {ti['task_id']:<22} {ti['state'] or '-':<15} {label}")
        audit = demo_dir / "airflow" / "audit" / DAG_ID / f"{run_id}.json"
        if audit.exists():
            report = json.loads(audit.read_text())
            for file in report["files"]:
                say(f"  file {file['name']}: {file['bytes']} bytes, md5 {file['md5']}")
            for accession in report["accessions"]:
                say(f"  accession {accession['accession']:<14} {accession['type']}")
            say(f"audit record: {audit}")
        say(f"run {run['state']} in {time.monotonic() - started:.0f} s (including start-up)")
        say(f"Airflow UI: {standalone.base_url}  login {USERNAME} / {standalone.password}")
        return 0 if run["state"] == "success" else 1
    finally:
        if keep_running and ran:
            say("left running; stop with: make demo-stop")
        else:
            standalone.stop()
            sandbox.stop()
            (demo_dir / "pids.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".demo")
    parser.add_argument("--keep-running", action="store_true", help="leave the UI up afterwards")
    parser.add_argument("--stop", action="store_true", help="only stop a previous demo")
    args = parser.parse_args(argv)
    if args.stop:
        stop_previous(args.dir)
        return 0
    return run_demo(args.dir, args.keep_running)


if __name__ == "__main__":
    sys.exit(main())
