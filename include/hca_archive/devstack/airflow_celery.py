"""Airflow with the CeleryExecutor on Postgres and Redis, each component its own process group.

The topology of docker-compose.yaml without Docker: ``airflow db migrate``, then an API server,
scheduler, DAG processor, triggerer and N Celery workers, all on loopback. The stack owns a fresh
Postgres database (dropped by ``stop``) and one Redis database number (flushed by ``stop``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg2
import redis
from psycopg2 import sql

from hca_archive.clients.airflow_api import AirflowApi
from hca_archive.devstack.airflow_env import (
    USERNAME,
    admin_password,
    airflow_environment,
    base_url,
    is_healthy,
)
from hca_archive.localnet import LOOPBACK, free_port

START_TIMEOUT = 300.0
MIGRATE_TIMEOUT = 300.0
STOP_GRACE = 20.0
POSTGRES_ADMIN_DSN = f"host={LOOPBACK} port=5432 user=postgres dbname=postgres"
REDIS_PORT = 6379
# Seconds after delivery that Redis hands a task not yet acknowledged (Airflow acks when it ends)
# to another worker: beyond the 48 hours a runner lets a file job run (FILE_JOB_TIME_LIMIT). The
# celery provider's default is 24 hours; docker-compose.yaml sets the same value.
VISIBILITY_TIMEOUT = 72 * 3600


@dataclass(frozen=True)
class CelerySettings:
    """Where the metadata and the queue live, and how the workers run tasks."""

    workers: int = 2
    concurrency: int = 2
    redis_db: int = 7
    database: str = field(default_factory=lambda: f"hca_archive_test_{secrets.token_hex(4)}")
    # Seconds without a task heartbeat before the scheduler fails the task (and retries it).
    heartbeat_timeout: int = 30


class AirflowCelery:
    """A CeleryExecutor Airflow on the machine's Postgres and Redis; ``start`` returns its API.

    ``extra_env`` carries the connections (``AIRFLOW_CONN_*``) and any other settings.
    """

    def __init__(
        self,
        home: Path,
        extra_env: dict[str, str],
        settings: CelerySettings | None = None,
        port: int | None = None,
    ) -> None:
        self.home = home
        self.extra_env = extra_env
        self.settings = settings or CelerySettings()
        self.port = port or free_port()
        self.base_url = base_url(self.port)
        self.password = admin_password(home)
        self.log_dir = home / "component-logs"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._database_created = False
        # One JWT and API secret for every component of this stack; environment only, never argv.
        self._secrets = {
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        }

    @property
    def worker_names(self) -> list[str]:
        return [f"worker{n}" for n in range(1, self.settings.workers + 1)]

    def environment(self) -> dict[str, str]:
        database = self.settings.database
        slots = self.settings.workers * self.settings.concurrency
        env = airflow_environment(self.home, self.port, "CeleryExecutor")
        env.update(
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                    f"postgresql+psycopg2://postgres@{LOOPBACK}:5432/{database}"
                ),
                "AIRFLOW__CELERY__BROKER_URL": (
                    f"redis://{LOOPBACK}:{REDIS_PORT}/{self.settings.redis_db}"
                ),
                "AIRFLOW__CELERY__RESULT_BACKEND": (
                    f"db+postgresql+psycopg2://postgres@{LOOPBACK}:5432/{database}"
                ),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.settings.concurrency),
                # No more tasks sent than the workers run at once: one waiting in Redis longer
                # than [scheduler] task_queued_timeout is sent again twice, then failed.
                "AIRFLOW__CORE__PARALLELISM": str(slots),
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(
                    VISIBILITY_TIMEOUT
                ),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(
                    self.settings.heartbeat_timeout
                ),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            }
        )
        env.update(self.extra_env)
        env.update(self._secrets)
        return env

    def start(self) -> AirflowApi:
        """Create the database, migrate it, start every component and wait until healthy."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._create_database()
        env = self.environment()
        try:
            self._migrate(env)
            for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
                self._spawn(component, [component], env)
            for name in self.worker_names:
                self.start_worker(name, env)
            deadline = time.monotonic() + START_TIMEOUT
            while not is_healthy(self.base_url):
                exited = [name for name, p in self._processes.items() if p.poll() is not None]
                if exited or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Airflow (Celery) did not start ({', '.join(exited) or 'timeout'}); "
                        f"see {self.log_dir}"
                    )
                time.sleep(2)
        except BaseException:
            self.stop()
            raise
        return self.api()

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start (or restart) the Celery worker ``name`` with its own log server port."""
        worker_env = dict(env or self.environment())
        worker_env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        arguments = ["celery", "worker", "--celery-hostname", f"{name}@%h", "--without-mingle"]
        arguments += ["--concurrency", str(self.settings.concurrency)]
        self._spawn(name, arguments, worker_env)

    def api(self) -> AirflowApi:
        return AirflowApi(self.base_url, USERNAME, self.password)

    def pid(self, component: str) -> int:
        return self._processes[component].pid

    def worker_running_job(self) -> str | None:
        """The name of a worker that is running ``hca-archive run-job`` right now, if any."""
        for name in self.worker_names:
            process = self._processes.get(name)
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(process.pid).children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        if "run-job" in child.cmdline():
                            return name
        return None

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and everything it started, as if its machine died.

        Descendants in their own sessions (the file job's subprocess) are found through psutil
        first, since killing the worker's process group alone would leave them running.
        """
        process = self._processes.pop(name)
        with contextlib.suppress(psutil.NoSuchProcess):
            descendants = psutil.Process(process.pid).children(recursive=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            for child in descendants:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        process.wait()

    def stop(self) -> None:
        """Stop every component (TERM, then KILL), drop the database and flush the Redis db."""
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._processes.clear()
        self._drop_database()
        redis.Redis(LOOPBACK, REDIS_PORT, db=self.settings.redis_db).flushdb()

    def _spawn(self, name: str, arguments: list[str], env: dict[str, str]) -> None:
        """Run ``airflow <arguments>`` as its own process group, logging to ``<name>.log``."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self._processes[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *arguments],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _migrate(self, env: dict[str, str]) -> None:
        with (self.log_dir / "db-migrate.log").open("ab") as log:
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=MIGRATE_TIMEOUT,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed; see {self.log_dir / 'db-migrate.log'}")

    def _admin(self) -> psycopg2.extensions.connection:
        connection = psycopg2.connect(POSTGRES_ADMIN_DSN)
        connection.autocommit = True
        return connection

    def _create_database(self) -> None:
        with contextlib.closing(self._admin()) as connection, connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.settings.database))
            )
        self._database_created = True

    def _drop_database(self) -> None:
        if not self._database_created:
            return
        with contextlib.closing(self._admin()) as connection, connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.settings.database)
                )
            )
        self._database_created = False
