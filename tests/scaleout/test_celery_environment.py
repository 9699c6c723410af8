"""AirflowCelery's environment: every component on the same database, broker and secrets."""

from __future__ import annotations

from pathlib import Path

from hca_archive.devstack.airflow_celery import AirflowCelery, CelerySettings
from hca_archive.orchestration.file_job_results import FILE_JOB_TIME_LIMIT
from tests.scaleout.conftest import celery_config


def test_components_share_database_broker_and_secrets(tmp_path: Path) -> None:
    stack = AirflowCelery(
        tmp_path, {"AIRFLOW_CONN_X": "{}"}, CelerySettings(redis_db=9, database="hca_archive_t1")
    )
    first, second = stack.environment(), stack.environment()
    assert first["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert first["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(":5432/hca_archive_t1")
    assert first["AIRFLOW__CELERY__RESULT_BACKEND"].endswith(":5432/hca_archive_t1")
    assert first["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/9"
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{stack.base_url}/execution/"
    assert first["AIRFLOW_CONN_X"] == "{}"
    for secret in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert len(first[secret]) >= 32
        assert first[secret] == second[secret]
    other = AirflowCelery(tmp_path / "other", {})
    assert (
        other.environment()["AIRFLOW__API_AUTH__JWT_SECRET"]
        != first["AIRFLOW__API_AUTH__JWT_SECRET"]
    )
    assert other.settings.database.startswith("hca_archive_test_")
    assert other.settings.database != CelerySettings().database
    assert stack.worker_names == ["worker1", "worker2"]


def test_redis_redelivers_no_file_job_a_runner_still_lets_run(tmp_path: Path) -> None:
    """Redis hands an unacknowledged task (Airflow acks late) to another worker once the
    visibility timeout has passed since delivery; the provider's default, when none is set, is
    24 hours, with a warning at every start. A runner lets a file job run for
    FILE_JOB_TIME_LIMIT (48 hours)."""
    stack = AirflowCelery(tmp_path / "home", {}, CelerySettings(concurrency=3))
    config = celery_config(stack.environment(), tmp_path / "home")
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility > FILE_JOB_TIME_LIMIT.total_seconds()
    assert config["task_acks_late"] is True  # a lost worker's task is not lost with it
    assert config["worker_prefetch_multiplier"] == 1
    assert config["worker_concurrency"] == 3


def test_the_scheduler_sends_no_more_tasks_than_the_workers_can_run(tmp_path: Path) -> None:
    """A task waiting in Redis for a slot longer than task_queued_timeout is failed (see
    test_compose_file.py); the executor sends at most as many as the workers run at once."""
    stack = AirflowCelery(tmp_path, {}, CelerySettings(workers=3, concurrency=2))
    assert stack.environment()["AIRFLOW__CORE__PARALLELISM"] == "6"
