"""What every local Airflow of the devstack shares: home, login, environment and health check.

``AirflowStandalone`` (one process) and ``AirflowCelery`` (one process per component) differ only
in the executor, the metadata database and how they start; the rest is here.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import requests

from hca_archive.localnet import LOOPBACK, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
USERNAME = "admin"
# What /api/v2/monitor/health reports for each component a running stack needs.
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def admin_password(home: Path) -> str:
    """The admin's password, kept (mode 0600) in the home so a rerun and the wrangler reuse it."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "passwords.json"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({USERNAME: secrets.token_urlsafe(12)}, handle)
    return json.loads(path.read_text())[USERNAME]


def airflow_environment(home: Path, port: int, executor: str) -> dict[str, str]:
    """The process environment of a local Airflow on loopback ``port``: this repo's DAGs and
    plugins, the simple auth manager with ``admin``, quick heartbeats, work and audit in ``home``.
    """
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__BASE_URL": base_url(port),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "HCA_ARCHIVE_WORKDIR": str(home / "work"),
            "HCA_ARCHIVE_AUDIT_URL": (home / "audit").as_uri(),
            # lets the report task set the run's note through the REST API
            "AIRFLOW_CONN_HCA_AIRFLOW_API": json.dumps(
                {
                    "conn_type": "http",
                    "host": base_url(port),
                    "login": USERNAME,
                    "password": admin_password(home),
                }
            ),
        }
    )
    return env


def base_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def is_healthy(url: str, components: tuple[str, ...] = COMPONENTS) -> bool:
    """Whether the API server at ``url`` answers and reports every component healthy."""
    try:
        health = requests.get(f"{url}/api/v2/monitor/health", timeout=5).json()
    except (requests.RequestException, ValueError):
        return False
    return all(health.get(part, {}).get("status") == "healthy" for part in components)
