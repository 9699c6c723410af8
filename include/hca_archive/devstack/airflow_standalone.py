"""``airflow standalone`` (SQLite, LocalExecutor) in its own AIRFLOW_HOME, as one process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hca_archive.clients.airflow_api import AirflowApi
from hca_archive.devstack.airflow_env import (
    USERNAME,
    admin_password,
    airflow_environment,
    base_url,
    is_healthy,
)
from hca_archive.localnet import free_port

START_TIMEOUT = 240.0
# How long an SQLite connection waits for another's write lock before "database is locked".
# Python's default of 5 s is too short for the scheduler, the DAG processor and the triggerer on a
# loaded 2-core machine: they all write to the one file. The API server waits less, because of a
# deadlock in Airflow 3: it writes the audit log of each REST action (a trigger, a note) from an
# async dependency, blocking its event loop, while another of its requests may hold the write lock
# until that loop lets it commit. Only the audit write's wait ending breaks it, and until then
# every Airflow component stands still (60 s in CI: the REST call and a task's XCom push timed
# out). The action then fails with a 500, which our API client and the Task SDK send again.
API_SERVER_LOCK_WAIT = 10.0
LOCK_WAIT = 60.0
IS_API_SERVER = sys.argv[1:2] == ["api-server"]  # standalone runs each part as `airflow <part>`
SQLITE_CONNECT_ARGS = {"timeout": API_SERVER_LOCK_WAIT if IS_API_SERVER else LOCK_WAIT}


class AirflowStandalone:
    """Airflow's all-in-one mode: scheduler, DAG processor, triggerer and API server.

    Every port is free-picked so several stacks (a demo and a test run) can share the machine.
    ``extra_env`` carries the connections (``AIRFLOW_CONN_*``) and any other settings.
    """

    def __init__(self, home: Path, extra_env: dict[str, str], port: int | None = None) -> None:
        self.home = home
        self.extra_env = extra_env
        self.port = port or free_port()
        self.base_url = base_url(self.port)
        self.log_path = home / "standalone.log"
        self.password = admin_password(home)
        self._process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        env = airflow_environment(self.home, self.port, "LocalExecutor")
        connect_args = f"{__name__}.SQLITE_CONNECT_ARGS"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = connect_args
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC"] = connect_args
        env.update(self.extra_env)
        return env

    def start(self) -> AirflowApi:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not is_healthy(self.base_url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Airflow did not start; see {self.log_path}")
            time.sleep(2)
        return self.api()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def api(self) -> AirflowApi:
        return AirflowApi(self.base_url, USERNAME, self.password)

    def stop(self) -> None:
        """Stop every Airflow process (they share the standalone's process group)."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._process = None
