"""Runs one submitted job in the background: PEND briefly, RUN, then DONE or EXIT.

Started detached by ``bsub``; the job command runs through ``/bin/sh -c`` (as LSF runs it) in
its own process group, so a bkill request reaches everything it started: SIGINT first (exit 130),
SIGKILL after the grace period (exit 137).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import ExitStack, suppress
from typing import Any

from hca_archive.sandbox.lsf.state import StateDir

_TICK = 0.1


def run_job(state: StateDir, job_id: int) -> None:
    settings = state.settings()
    job = state.job(job_id)
    if job is None:
        raise SystemExit(f"no job {job_id} in {state.root}")
    submission = job.submission
    if _pending(state, job_id, settings.pend_seconds):
        _finish(state, job_id, submission, exit_code=130, started=None)
        return
    started = time.time()
    environment = {**submission["environment"], "LSB_JOBID": str(job_id)}
    environment["LSB_JOBNAME"] = submission["name"]
    try:
        process = _start(submission, environment)
    except OSError as error:  # e.g. the -o directory is missing: LSF reports the job as EXIT
        _finish(state, job_id, submission, exit_code=1, started=started, note=str(error))
        return
    state.write_status(job_id, {"stat": "RUN", "start_time": started, "pgid": process.pid})
    returncode = _wait(state, job_id, process, settings.kill_grace)
    exit_code = 128 - returncode if returncode < 0 else returncode
    _finish(state, job_id, submission, exit_code=exit_code, started=started)


def _start(submission: dict[str, Any], environment: dict[str, str]) -> subprocess.Popen:
    with ExitStack() as files:
        stdout = files.enter_context(_open_output(submission["stdout"]))
        stderr = (
            files.enter_context(_open_output(submission["stderr"]))
            if submission["stderr"]
            else stdout
        )
        return subprocess.Popen(
            ["/bin/sh", "-c", submission["command"]],
            cwd=submission["cwd"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )


def _open_output(path: str | None) -> Any:
    """Append to the -o/-e file; without one LSF would mail the output, the stand-in drops it."""
    return open(path, "ab") if path else open(os.devnull, "wb")


def _pending(state: StateDir, job_id: int, seconds: float) -> bool:
    """Stay PEND for ``seconds``; True when killed meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if state.kill_requested(job_id):
            return True
        time.sleep(_TICK)
    return state.kill_requested(job_id)


def _wait(state: StateDir, job_id: int, process: subprocess.Popen, grace: float) -> int:
    interrupted_at: float | None = None
    while True:
        try:
            return process.wait(timeout=_TICK)
        except subprocess.TimeoutExpired:
            pass
        if not state.kill_requested(job_id):
            continue
        if interrupted_at is None:
            _signal_group(process.pid, signal.SIGINT)
            interrupted_at = time.monotonic()
        elif time.monotonic() - interrupted_at > grace:
            _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _finish(
    state: StateDir,
    job_id: int,
    submission: dict[str, Any],
    *,
    exit_code: int,
    started: float | None,
    note: str = "",
) -> None:
    ended = time.time()
    stat = "DONE" if exit_code == 0 else "EXIT"
    _append_report(submission, job_id, exit_code, note)
    state.write_status(
        job_id, {"stat": stat, "exit_code": exit_code, "start_time": started, "end_time": ended}
    )


def _append_report(submission: dict[str, Any], job_id: int, exit_code: int, note: str) -> None:
    """LSF appends a job report to the -o file."""
    if not submission.get("stdout"):
        return
    outcome = "Successfully completed." if exit_code == 0 else f"Exited with exit code {exit_code}."
    report = (
        "\n------------------------------------------------------------\n"
        f"Sender: LSF System\nSubject: Job {job_id}: <{submission['name']}> "
        f"{'Done' if exit_code == 0 else 'Exited'}\n\n{outcome}\n{note}"
    )
    try:
        with open(submission["stdout"], "a") as stdout:
            stdout.write(report)
    except OSError:
        pass
