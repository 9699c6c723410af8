"""The operator in Airflow's own task runner: ``dag.test()`` defers, runs the trigger, resumes."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.lsf.conftest import plan_job

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG_FILE = """
    import json, os, shlex, sys
    import pendulum
    from airflow.sdk import DAG
    from hca_archive.orchestration.lsf.operator import LsfFileJobOperator
    from tests.lsf.conftest import FAKE_JOB, SECRETS

    with DAG("lsf_dag_run", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        LsfFileJobOperator.partial(
            task_id="run_lsf",
            environment="sandbox",
            ssh_conn_id=os.environ["LSF_TEST_CONN_ID"],
            credentials=lambda environment: SECRETS,
            command_prefix=shlex.join([sys.executable, str(FAKE_JOB)]),
            input_bytes=0,
            poll_interval=0.5,
            map_index_template="{{ job_label }}",
        ).expand(batch=json.loads(os.environ["LSF_TEST_BATCHES"]))
"""


def test_a_mapped_dag_run_defers_and_resumes_through_airflow(
    lsf_quick, hpc_connection, tmp_path, monkeypatch
):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils import db

    batches = [[plan_job("dagrun-a", sleep=1)], [plan_job("dagrun-b"), plan_job("dagrun-c")]]
    monkeypatch.setenv("LSF_TEST_BATCHES", json.dumps(batches))
    monkeypatch.setenv("LSF_TEST_CONN_ID", hpc_connection)
    (tmp_path / "lsf_dag_run.py").write_text(textwrap.dedent(DAG_FILE))
    db.initdb()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(tmp_path / "lsf_dag_run.py"))
    assert not bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)

    run = bag.get_dag("lsf_dag_run").test()

    assert run.state == "success"
    labels = sorted(ti.rendered_map_index for ti in run.get_task_instances())
    assert labels[0].startswith("dagrun-a,") and labels[1].endswith("(+1 more jobs)")
