"""A restarted sandbox keeps everything: credentials, ports, records, uploads, S3 objects, tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.sandbox import start_sandbox
from tests.sandbox.helpers import archiver, latest, s3_bytes, trigger_and_wait, upload, wait_for

pytestmark = pytest.mark.integration


def test_restart_keeps_state(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "state", "--plan-delay", "1") as sandbox:
        [done, pending] = sandbox.seed(count=2, jobs=["plain"], reads=20)
        record = trigger_and_wait(sandbox, done)
        [planned] = record["fileUploadPlan"][0]["files"]
        data = s3_bytes(sandbox, planned["cloud_url"])
        upload(sandbox, record["dspUuid"], planned["name"], data)
        assert archiver(
            sandbox, "POST", "/archiveSubmissions", json={"submission_uuid": pending}
        ).ok
        endpoints_before = dict(sandbox.endpoints)

        sandbox.restart()

        assert sandbox.endpoints == endpoints_before
        assert latest(sandbox, done) == record
        assert s3_bytes(sandbox, planned["cloud_url"]) == data
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
