import subprocess
import sys
from pathlib import Path

from hca_archive.devstack.airflow_standalone import AirflowStandalone


def test_sqlite_connections_wait_for_locks_longer_than_python_default(tmp_path: Path) -> None:
    """Airflow itself resolves the setting: the engine it builds waits 60 s for a lock, not 5 s."""
    env = AirflowStandalone(tmp_path, {}).environment()
    probe = (
        "from airflow import settings;"
        "settings.configure_orm();"
        "connection = settings.engine.raw_connection();"
        "print(connection.execute('PRAGMA busy_timeout').fetchone()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[-1] == "60000"
