"""A restarted sandbox keeps everything: credentials, ports, records, uploads, S3 objects, tasks."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.fixtures.sandbox import start_sandbox
from tests.sandbox.helpers import archiver, latest, trigger_and_wait, upload, wait_for

pytestmark = pytest.mark.integration


def test_restart_keeps_state(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "state", "--plan-delay", "1") as sandbox:
        [done, pending] = sandbox.seed(count=2, jobs=["plain"], reads=20)
        record = trigger_and_wait(sandbox, done)
        [planned] = record["fileUploadPlan"][0]["files"]
        bucket, _, key = planned["cloud_url"].removeprefix("s3://").partition("/")

        def s3():
            return boto3.client(
                "s3",
                endpoint_url=sandbox.s3_endpoint_url,
                aws_access_key_id=sandbox.aws_access_key_id,
                aws_secret_access_key=sandbox.aws_secret_access_key,
                region_name="us-east-1",
            )

        data = s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        upload(sandbox, record["dspUuid"], planned["name"], data)
        assert archiver(
            sandbox, "POST", "/archiveSubmissions", json={"submission_uuid": pending}
        ).ok
        endpoints_before = dict(sandbox.endpoints)

        sandbox.restart()

        assert sandbox.endpoints == endpoints_before
        assert latest(sandbox, done) == record
        assert s3().get_object(Bucket=bucket, Key=key)["Body"].read() == data
        wait_for("the record triggered before the restart", lambda: latest(sandbox, pending))
        [dsp_summary] = sandbox.submission_summary(done)["dsp_submissions"]
        [file_summary] = dsp_summary["files"]
        assert file_summary["uploads_completed"] == 1
        wait_for(
            "the content check",
            lambda: (
                sandbox.submission_summary(done)["dsp_submissions"][0]["files"][0]["state"]
                == "ready"
            ),
        )
