"""The real ``hca-archive run-job`` under the LSF stand-in, against the sandbox services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import TaskDeferred

from hca_archive.filejob.credentials import ENVIRONMENT_NAMES
from hca_archive.orchestration.lsf.operator import LsfFileJobOperator
from tests.lsf.conftest import context, run_deferred
from tests.sandbox.helpers import trigger_and_wait, wait_for

pytestmark = pytest.mark.integration

HCA_ARCHIVE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hca-archive"


def test_a_plan_job_is_converted_and_uploaded_through_lsf(sandbox, lsf_quick, hpc_connection):
    (submission,) = sandbox.seed(1, jobs=["10xV2"], reads=200)
    job = trigger_and_wait(sandbox, submission)["fileUploadPlan"][0]
    credentials = {
        key: value for key, value in sandbox.env().items() if key in ENVIRONMENT_NAMES.values()
    }
    op = LsfFileJobOperator(
        task_id="archive_file",
        job=job,
        environment="sandbox",
        ssh_conn_id=hpc_connection,
        credentials=lambda environment: credentials,
        command_prefix=str(HCA_ARCHIVE),
        cores=1,
        poll_interval=0.3,
    )
    ctx = context("real")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)

    result = run_deferred(op, deferred.value, ctx)

    assert result["succeeded"] == 1
    (entry,) = result["jobs"]
    assert entry["status"] == "succeeded"
    assert [file["upload"] for file in entry["files"]] == ["uploaded"]
    bam = entry["files"][0]

    def md5_on_dsp() -> str | None:
        (dsp_submission,) = sandbox.submission_summary(submission)["dsp_submissions"]
        files = {file["name"]: file for file in dsp_submission["files"]}
        return files.get(bam["name"], {}).get("md5")

    assert wait_for("DSP's check of the upload", md5_on_dsp) == bam["md5"]
    record = json.dumps(lsf_quick.command_record())
    for secret in (sandbox.aap_password, sandbox.aws_secret_access_key):
        assert secret not in record
        assert secret not in json.dumps(result)
