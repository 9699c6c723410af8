"""Airflow components killed mid-run, and a whole run searched for its secrets.

One private sandbox and Airflow standalone for the module. The sandbox builds its archive record
15 s after the request, so ``request_archive`` stays deferred long enough to kill the triggerer
under it. Airflow declares a task whose process vanished dead after 20 s without a heartbeat.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import psutil
import pytest

from tests.fixtures.airflow import DAG_ID, AirflowStack
from tests.reliability.stacks import assert_archived_once, private_stack, restart_airflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLAN_DELAY = "15"
HEARTBEAT = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # a file job killed with its worker is retried without the production minute's wait
    "HCA_ARCHIVE_FILE_JOB_RETRY_DELAY_SECONDS": "5",
    # A restarted scheduler takes over a dead one's running tasks only once that one's heartbeat
    # is 30 s old, and looks again after this interval (300 s by default).
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
}
RUN_TIMEOUT = 900
SECRET_FIELDS = ("archiver_api_key", "aap_password", "aws_access_key_id", "aws_secret_access_key")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    with private_stack(
        tmp_path_factory.mktemp("crash-sandbox"),
        tmp_path_factory.mktemp("crash-airflow"),
        "--plan-delay",
        PLAN_DELAY,
        extra_env=HEARTBEAT,
    ) as stack:
        yield stack


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def task_instance(stack: AirflowStack, run_id: str, task_id: str, state: str) -> Any:
    """The first instance of ``task_id`` in ``state``, or None."""
    for ti in stack.api.task_instances(DAG_ID, run_id):
        if ti["task_id"] == task_id and ti["state"] == state:
            return ti
    return None


def standalone_processes(stack: AirflowStack) -> list[psutil.Process]:
    group = os.getpgid(stack.standalone.pid)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if os.getpgid(process.pid) == group:
                found.append(process)
        except ProcessLookupError:
            continue
    return found


def kill(processes: list[psutil.Process]) -> None:
    assert processes
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue


def component(stack: AirflowStack, name: str) -> list[psutil.Process]:
    """The processes of ``airflow <name>`` (the command and its forked helpers of that name)."""
    return [p for p in standalone_processes(stack) if name in (p.info["cmdline"] or [])]


def worker_of(stack: AirflowStack, ti_id: str) -> list[psutil.Process]:
    """The LocalExecutor worker running the task instance, its task process and their children."""
    workers = [p for p in standalone_processes(stack) if ti_id in " ".join(p.info["cmdline"] or [])]
    tree = {p.pid: p for worker in workers for p in [worker, *worker.children(recursive=True)]}
    return list(tree.values())


def start(stack: AirflowStack) -> tuple[str, str]:
    (uuid,) = stack.sandbox.seed(jobs=["10xV2", "plain"], reads=2000)
    return uuid, stack.api.trigger(DAG_ID, {"submission_uuid": uuid})


def finish(stack: AirflowStack, uuid: str, run_id: str) -> dict[str, Any]:
    run = stack.api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)
    assert run["state"] == "success", stack.states(run_id)
    return assert_archived_once(stack.sandbox, uuid)


class ArgvSampler:
    """Every distinct command line on the machine (``ps -eo args``), sampled every 0.2 s."""

    def __init__(self) -> None:
        self.lines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
            self.lines.update(listing.stdout.splitlines())

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def everything_the_api_shows(stack: AirflowStack, run_id: str) -> str:
    """Task instances (rendered fields included) and the value of every XCom of the run."""
    run_path = f"/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    shown = [stack.api.task_instances(DAG_ID, run_id)]
    entries = stack.api.json(
        "GET", f"{run_path}/taskInstances/~/xcomEntries", params={"limit": 1000}
    )
    for entry in entries["xcom_entries"]:
        path = f"{run_path}/taskInstances/{entry['task_id']}/xcomEntries/{entry['key']}"
        params = {"map_index": entry["map_index"], "deserialize": True}
        shown.append(stack.api.json("GET", path, params=params))
    assert len(shown) > 10  # every step pushes its record: the XComs were read
    return json.dumps(shown)


def test_a_whole_archive_shows_its_secrets_nowhere(stack: AirflowStack) -> None:
    secrets = {field: stack.sandbox.endpoints[field] for field in SECRET_FIELDS}
    with ArgvSampler() as argv:
        uuid, run_id = start(stack)
        finish(stack, uuid, run_id)
    assert any("run-job" in line for line in argv.lines)  # the sampler saw the file jobs
    home = stack.standalone.home
    logs = [path for path in (home / "logs").rglob("*") if path.is_file()]
    logs += [home / "standalone.log", *(home / "audit").rglob("*.json")]
    assert any("run_local" in str(path) for path in logs)
    api_view = everything_the_api_shows(stack, run_id)
    for field, secret in secrets.items():
        assert not [line for line in argv.lines if secret in line], field
        assert not [path for path in logs if secret in path.read_text(errors="replace")], field
        assert secret not in api_view, field


def test_a_killed_scheduler_is_restarted_and_the_run_completes(stack: AirflowStack) -> None:
    uuid, run_id = start(stack)
    wait_until("a running file job", lambda: task_instance(stack, run_id, "run_local", "running"))
    kill(component(stack, "scheduler"))
    restart_airflow(stack)
    finish(stack, uuid, run_id)


def test_a_killed_triggerer_is_restarted_and_no_second_dsp_submission_is_made(
    stack: AirflowStack,
) -> None:
    uuid, run_id = start(stack)
    wait_until(
        "request_archive deferred",
        lambda: task_instance(stack, run_id, "request_archive", "deferred"),
    )
    kill(component(stack, "triggerer"))
    restart_airflow(stack)
    finish(stack, uuid, run_id)  # exactly one DSP submission among its checks


def test_a_killed_worker_fails_its_try_and_the_retry_uploads_nothing_twice(
    stack: AirflowStack,
) -> None:
    """The worker process, its task process and the file job die at once, as with a lost node;
    the scheduler (still up) sees the heartbeat stop and retries the task."""
    uuid, run_id = start(stack)
    ti = wait_until(
        "a running file job", lambda: task_instance(stack, run_id, "run_local", "running")
    )
    processes = wait_until("the file job's processes", lambda: worker_of(stack, ti["id"]), 60)
    kill(processes)
    finish(stack, uuid, run_id)
    tries = {
        t["map_index"]: t["try_number"]
        for t in stack.api.task_instances(DAG_ID, run_id)
        if t["task_id"] == "run_local"
    }
    assert tries[ti["map_index"]] >= 2, tries
