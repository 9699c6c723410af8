"""Helpers for the LSF operator and trigger tests: a fake job, contexts, running a trigger."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hca_archive.lsf.commands import bjobs_status_argv
from hca_archive.lsf.outputs import JobState, parse_bjobs_json, parse_bsub

FAKE_JOB = Path(__file__).with_name("fake_hca_archive.py")
SECRETS = {
    "HCA_AAP_URL": "http://127.0.0.1:1/aap",
    "HCA_AAP_USERNAME": "archiver",
    "HCA_AAP_PASSWORD": "pw-Zq7-very-secret",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEKEY",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-Xy9-value",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}
SECRET_VALUES = ("pw-Zq7-very-secret", "aws-secret-Xy9-value")


def plan_job(tag: str, sleep: float = 0, status: str = "succeeded") -> dict[str, Any]:
    """A valid plan job with unusual (but legal) names; the fake job reads its behaviour from
    manifest_id. Names with shell syntax are refused before the cluster: see test_operator."""
    return {
        "dsp_api_url": "http://127.0.0.1:1",
        "submission_url": "http://127.0.0.1:1/api/submissions/sub-1",
        "manifest_id": f"{tag},sleep={sleep},status={status}",
        "files": [{"name": f"{tag} donor 1+2.bam"}],
        "conversion": {
            "output_name": f"{tag} donor 1+2.bam",
            "schema": "10xV2",
            "inputs": [
                {"name": "R1 lane=1@x.fastq.gz", "read_index": "read1", "cloud_url": "s3://b-1/R1"},
                {"name": "R2.fastq.gz", "read_index": "read2", "cloud_url": "s3://b-1/R2"},
            ],
        },
    }


def context(run_id: str, map_index: int = 0, dag_id: str = "lsf_test") -> dict[str, Any]:
    """What the operator reads of an Airflow context; step records land in ``ti.pushed``."""
    ti = SimpleNamespace(dag_id=dag_id, run_id=run_id, map_index=map_index, task_id="t")
    ti.try_number = 1
    ti.pushed = []
    ti.xcom_push = lambda key, value: ti.pushed.append((key, value))
    return {"ti": ti}


def operator(hpc_connection: str | None, job: dict[str, Any] | None, **kwargs: Any):
    """The operator running ``job`` (or ``batch=`` in kwargs) with the fake job."""
    from hca_archive.orchestration.lsf.operator import LsfFileJobOperator

    if job is not None:
        kwargs["job"] = job
    return LsfFileJobOperator(
        task_id="archive_file",
        ssh_conn_id=hpc_connection,
        credentials=lambda environment: SECRETS,
        **{
            "command_prefix": shlex.join([sys.executable, str(FAKE_JOB)]),
            "poll_interval": 0.3,
            "environment": "test",
            "input_bytes": 0,  # no S3 to ask (sizing has its own tests)
            **kwargs,
        },
    )


async def first_event(trigger, limit: float = 60) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("trigger ended without an event")

    return await asyncio.wait_for(run(), limit)


def run_deferred(op, deferred, ctx) -> Any:
    """Drive a deferral to the end as the triggerer and worker would: trigger, then resume."""
    while True:
        event = asyncio.run(first_event(deferred.trigger))
        try:
            assert not deferred.kwargs  # the event alone resumes the task
            return getattr(op, deferred.method_name)(ctx, event)
        except Exception as error:
            if type(error).__name__ != "TaskDeferred":
                raise
            deferred = error


def submit(hpc, *argv: str) -> str:
    """``bsub ARGV`` on the cluster; the job id."""
    result = hpc.run(["bsub", *argv])
    return parse_bsub(result.stdout, result.stderr, result.returncode).job_id


def state(hpc, job_id: str) -> JobState | None:
    result = hpc.run(bjobs_status_argv([job_id]))
    return parse_bjobs_json(result.stdout, result.stderr, result.returncode).by_id().get(job_id)


def wait_for(hpc, job_id: str, stats: set[str], limit: float = 60) -> JobState:
    """Poll the job until its state is one of ``stats``."""
    deadline = time.monotonic() + limit
    current = None
    while time.monotonic() < deadline:
        current = state(hpc, job_id)
        if current is not None and current.stat in stats:
            return current
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {stats}; last {current}")


def wake_up(trigger) -> dict[str, Any]:
    """An event of ``trigger`` that says nothing about the job (the task must look itself)."""
    return {"job_id": trigger.job_id, "job_name": trigger.job_name, "directory": trigger.directory}


@pytest.fixture
def lsf_quick(hpc):
    hpc.configure_lsf(pend_seconds=0.1)
    yield hpc
    hpc.reset_lsf()
