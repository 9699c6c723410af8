import subprocess
import sys
from pathlib import Path

import pytest

from hca_archive.devstack.airflow_standalone import AirflowStandalone


@pytest.mark.parametrize(("part", "busy_timeout_ms"), [("scheduler", 60000), ("api-server", 10000)])
def test_sqlite_lock_waits_are_long_except_in_the_api_server(
    tmp_path: Path, part: str, busy_timeout_ms: int
) -> None:
    """Airflow itself resolves the setting, in a process started as `airflow <part>` is."""
    env = AirflowStandalone(tmp_path, {}).environment()
    probe = (
        f"import sys; sys.argv[1:] = [{part!r}];"
        "from airflow import settings;"
        "settings.configure_orm();"
        "connection = settings.engine.raw_connection();"
        "print(connection.execute('PRAGMA busy_timeout').fetchone()[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[-1] == str(busy_timeout_ms)
