"""Shared pytest set-up. Fixtures live in tests/fixtures/, one module per thing they start."""

import os
import tempfile
from pathlib import Path

# Airflow reads its home and config at import: give the test session its own, before any import.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="hca-archive-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.sandbox",
    "tests.fixtures.hpc",
    "tests.fixtures.airflow",
    "tests.fixtures.moto",
    "tests.fixtures.variables",
]
