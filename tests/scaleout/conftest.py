"""The machine's Postgres and Redis (started when stopped), and a Celery Airflow on them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hca_archive.clients.airflow_api import AirflowApi
from hca_archive.devstack.airflow_celery import AirflowCelery, CelerySettings
from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.localnet import LOOPBACK
from hca_archive.sandbox.process import SandboxInfo

DAG_ID = "archive_submission"
TEST_SETTINGS = {
    # the scheduled sweep would start a second run for the test's seeded submissions
    "HCA_ARCHIVE_SWEEP_SCHEDULE": "none",
    # the job of a killed worker is retried without the production minute's wait
    "HCA_ARCHIVE_FILE_JOB_RETRY_DELAY_SECONDS": "5",
}
POSTGRES_PORT, REDIS_PORT = 5432, 6379
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def wait_listening(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} does not listen on {LOOPBACK}:{port}")
        time.sleep(0.5)


CELERY_CONFIG_PROBE = (
    "import json;"
    "from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG as c;"
    "print(json.dumps({k: c[k] for k in ('broker_transport_options', 'task_acks_late',"
    " 'worker_prefetch_multiplier', 'worker_concurrency', 'task_default_queue')}))"
)


def celery_config(env: dict[str, str], home: Path) -> dict[str, Any]:
    """The Celery settings Airflow's celery provider makes of ``env``, in a process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", CELERY_CONFIG_PROBE],
        env={**env, "AIRFLOW_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="session")
def postgres_and_redis() -> None:
    """Start the machine's Postgres cluster and Redis if they are not running (CI may stop them)."""
    if not listening(POSTGRES_PORT):
        versions = sorted(Path("/etc/postgresql").iterdir())
        if not versions:
            pytest.fail("no PostgreSQL cluster in /etc/postgresql (the scale-out tests need it)")
        version = versions[-1].name
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True
        )
        wait_listening(POSTGRES_PORT, "PostgreSQL")
    if not listening(REDIS_PORT):
        subprocess.run(REDIS_START, check=True)
        wait_listening(REDIS_PORT, "Redis")


@pytest.fixture(scope="module")
def celery_stack(
    postgres_and_redis: None, sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AirflowCelery, AirflowApi]]:
    """Airflow with two Celery workers on a fresh Postgres database, wired to the sandbox."""
    # Airflow 3's API server and task state store use an async driver next to psycopg2.
    # Both come with requirements.lock: missing, they are a broken install, not a reason to skip.
    import airflow.providers.celery.executors.celery_executor  # noqa: F401
    import asyncpg  # noqa: F401

    stack = AirflowCelery(
        tmp_path_factory.mktemp("airflow-celery"),
        {**sandbox_connections(sandbox.endpoints), **TEST_SETTINGS},
        CelerySettings(workers=2, concurrency=2, redis_db=7),
    )
    api = stack.start()
    try:
        api.wait_for_dag(DAG_ID)
        yield stack, api
    finally:
        stack.stop()
