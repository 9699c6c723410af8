"""``airflow standalone`` (SQLite, LocalExecutor) in its own AIRFLOW_HOME, as one process group."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from hca_archive.devstack.airflow_api import AirflowApi
from hca_archive.localnet import LOOPBACK, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 240.0
USERNAME = "admin"


class AirflowStandalone:
    """Airflow's all-in-one mode: scheduler, DAG processor, triggerer and API server.

    Every port is free-picked so several stacks (a demo and a test run) can share the machine.
    ``extra_env`` carries the connections (``AIRFLOW_CONN_*``) and any other settings.
    """

    def __init__(self, home: Path, extra_env: dict[str, str], port: int | None = None) -> None:
        self.home = home
        self.extra_env = extra_env
        self.port = port or free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = home / "standalone.log"
        self.password = self._password()
        self._process: subprocess.Popen[bytes] | None = None

    def _password(self) -> str:
        """A password kept in the home, so a rerun (and the wrangler) can keep using it."""
        self.home.mkdir(parents=True, exist_ok=True)
        path = self.home / "passwords.json"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({USERNAME: secrets.token_urlsafe(12)}, handle)
        return json.loads(path.read_text())[USERNAME]

    def environment(self) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        env = dict(os.environ)
        env.update(
            {
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                    self.home / "passwords.json"
                ),
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__HOST": LOOPBACK,
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "HCA_ARCHIVE_WORKDIR": str(self.home / "work"),
                "HCA_ARCHIVE_AUDIT_URL": (self.home / "audit").as_uri(),
                # lets the report task set the run's note through the REST API
                "AIRFLOW_CONN_HCA_AIRFLOW_API": json.dumps(
                    {
                        "conn_type": "http",
                        "host": self.base_url,
                        "login": USERNAME,
                        "password": self.password,
                    }
                ),
            }
        )
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
        while not self._healthy():
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

    def _healthy(self) -> bool:
        try:
            health = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all(health.get(part, {}).get("status") == "healthy" for part in parts)

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
