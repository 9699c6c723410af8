"""AirflowCelery's environment: every component on the same database, broker and secrets."""

from __future__ import annotations

from pathlib import Path

from hca_archive.devstack.airflow_celery import AirflowCelery, CelerySettings


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
