"""A private sandbox and Airflow for the sweep and the wrangler's signals (one per session).

Private because the session sandbox holds Archiving submissions of other tests, which a sweep
would pick up. Its DAG folder holds the project's DAGs and ``dags/wrangler_signals.py``; its
e-mail connection points at a local SMTP sink.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hca_archive.devstack.airflow_standalone import AirflowStandalone
from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.sandbox.process import start_sandbox
from tests.fixtures.airflow import DAG_ID, AirflowStack
from tests.fixtures.paths import REPO_ROOT
from tests.sweep.smtp_sink import SmtpSink

SWEEP = "archive_sweep_sandbox"
SIGNALS_DAG = Path(__file__).parent / "dags" / "wrangler_signals.py"
WRANGLERS = ["wranglers@example.org"]


@dataclass
class PrivateStack:
    airflow: AirflowStack
    mails: SmtpSink


def dags_folder(target: Path) -> Path:
    for dag_file in [*(REPO_ROOT / "dags").glob("*.py"), SIGNALS_DAG]:
        shutil.copy(dag_file, target / dag_file.name)
    return target


@pytest.fixture(scope="session")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    mails = SmtpSink()
    with start_sandbox(tmp_path_factory.mktemp("private-sandbox")) as sandbox:
        env = sandbox_connections(sandbox.endpoints)
        env.update(
            {
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder(tmp_path_factory.mktemp("dags"))),
                "AIRFLOW_CONN_HCA_NOTIFY_SMTP": json.dumps(mails.connection(WRANGLERS)),
                "HCA_ARCHIVE_SWEEP_SCHEDULE": "none",
                "HCA_ARCHIVE_SWEEP_MIN_AGE_MINUTES": "0",  # seeded envelopes are brand new
            }
        )
        standalone = AirflowStandalone(tmp_path_factory.mktemp("private-airflow"), env)
        api = standalone.start()
        try:
            for dag_id in (DAG_ID, SWEEP, "wrangler_signals"):
                api.wait_for_dag(dag_id)
            yield PrivateStack(AirflowStack(standalone, api, sandbox), mails)
        finally:
            standalone.stop()
            mails.close()
