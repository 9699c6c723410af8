"""The local runner's ``run-job`` child gets its credentials from a 0600 file; it must not also
inherit the worker's whole environment, which under compose (``with_sandbox``) and the documented
``AIRFLOW_CONN_*`` set-up holds every connection's secrets, the metadata database URL with its
password and the Fernet key."""

from __future__ import annotations

import json
import subprocess
import sys

from hca_archive.orchestration.runners import local

PROBE = (
    "import json, os, sys; sys.stdin.close();"
    "print(json.dumps({'succeeded': 0, 'leaked': sorted(k for k in os.environ"
    " if k.startswith(('AIRFLOW_CONN_', 'AIRFLOW__DATABASE__', 'AIRFLOW__CORE__FERNET')))}))"
)


def test_run_job_does_not_inherit_the_workers_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_ARCHIVER", json.dumps({"password": "archiver-key"}))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow:pw@db/airflow")
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "fernet-key")
    monkeypatch.setenv("HCA_ARCHIVE_WORKDIR", str(tmp_path))
    real_popen = subprocess.Popen

    def popen(command, **kwargs):  # run a probe in place of run-job, with the same settings
        return real_popen([sys.executable, "-c", PROBE], **kwargs)

    monkeypatch.setattr(local.subprocess, "Popen", popen)
    operator = local.LocalFileJobOperator(task_id="run_local", batch=[], environment="dev")
    plan = tmp_path / "plan.json"
    plan.write_text('{"jobs": []}')
    result = operator._run(tmp_path, plan, {"HCA_AAP_USERNAME": "u"})
    assert result["leaked"] == []
