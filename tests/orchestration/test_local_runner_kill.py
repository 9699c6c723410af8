"""A local file job stopped by its time limit or by hand: Airflow calls ``on_kill``, which must
stop run-job and everything it started (it runs in a session of its own, so nothing else would),
and the task must fail rather than wait on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowException

from hca_archive.orchestration.runners import local

# Stands in for run-job: starts a grandchild, writes its pid, then hangs like a stalled download.
# With `stubborn`, both ignore SIGTERM, as a job stuck in uninterruptible work would.
HANGING_JOB = """
import os, signal, subprocess, sys, time
stubborn = sys.argv[2] == "stubborn"
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c",
    "import signal, sys, time\\n"
    "if sys.argv[1] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "time.sleep(300)", sys.argv[2]])
with open(sys.argv[1], "w") as pids:
    pids.write(f"{os.getpid()} {grandchild.pid}")
print("downloading", file=sys.stderr, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # reaped by no one yet: a zombie is stopped
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("behaviour", ["obliging", "stubborn"])
def test_on_kill_stops_run_job_and_what_it_started(monkeypatch, tmp_path, behaviour):
    monkeypatch.setenv("HCA_ARCHIVE_WORKDIR", str(tmp_path))
    monkeypatch.setattr(local, "KILL_GRACE_SECONDS", 1)
    pids_file = tmp_path / "pids"
    real_popen = subprocess.Popen

    def popen(command, **kwargs):  # the hanging stand-in, with run-job's settings
        job = [sys.executable, "-c", HANGING_JOB, str(pids_file), behaviour]
        return real_popen(job, **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", popen)
    operator = local.LocalFileJobOperator(task_id="run_local", batch=[], environment="dev")
    plan = tmp_path / "plan.json"
    plan.write_text('{"jobs": []}')
    outcome: list[BaseException | dict] = []

    def run() -> None:
        try:
            outcome.append(operator._run(tmp_path, plan, {"HCA_AAP_USERNAME": "u"}))
        except BaseException as error:
            outcome.append(error)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not (pids_file.exists() and pids_file.read_text().count(" ")):
        assert time.monotonic() < deadline, "the stand-in job never started"
        time.sleep(0.05)
    job_pid, grandchild_pid = map(int, pids_file.read_text().split())

    operator.on_kill()
    runner.join(15)

    assert not runner.is_alive(), "the task still waits on a killed job"
    assert isinstance(outcome[0], AirflowException)  # no result: the task fails
    assert not list(tmp_path.glob("credentials-*.json"))
    deadline = time.monotonic() + 5
    while _alive(grandchild_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(job_pid)
    assert not _alive(grandchild_pid), "a process the job started outlived it"
