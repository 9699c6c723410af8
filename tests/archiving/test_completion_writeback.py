"""The archiver dies after DSP completes, before writing the accessions back: over HTTP against
the sandbox (fault ``die_after_dsp_completes``), the completion wait stops naming the DSP
submission and what to clear, instead of polling for 24 h; the cleared ``complete_submission``
asks the archiver again, which only writes back: one DSP submission, each file uploaded once.
Likewise a completion request that made nothing (DSP left Draft)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.orchestration import progress_checks
from hca_archive.orchestration.triggers import ArchiveProgressTrigger
from tests.archiving.test_wait_timeouts import completion_sensor
from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.helpers import s3_bytes, trigger_and_wait, upload, wait_for

pytestmark = pytest.mark.integration

# Long enough that a loaded machine's sandbox submits and writes back within it when it works.
WRITEBACK_GRACE_SECONDS = 3.0
# Without the fix the wait only ends at its deadline: keep that short, and far beyond the grace.
DEADLINE_SECONDS = 30.0


class Ti:
    try_number = 1

    def __init__(self, dsp_uuid: str) -> None:
        self.dsp_uuid = dsp_uuid

    def xcom_pull(self, task_ids: str) -> dict[str, str]:
        return {"dsp_uuid": self.dsp_uuid}

    def xcom_push(self, key: str, value: object) -> None:
        pass


@pytest.fixture
def connections(sandbox_faults: SandboxInfo, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Environment ``sandbox`` of the session sandbox, with a write-back grace of seconds."""
    for name, value in sandbox_connections(sandbox_faults.endpoints).items():
        if name.endswith("_ARCHIVER"):
            archiver = json.loads(value)
            archiver["extra"]["writeback_grace"] = WRITEBACK_GRACE_SECONDS
            value = json.dumps(archiver)
        monkeypatch.setenv(name, value)
    progress_checks._hook.cache_clear()
    yield
    progress_checks._hook.cache_clear()


def wait_for_completion(dsp_uuid: str, submission_uuid: str) -> dict[str, Any]:
    """The first event of the ``wait_for_completion`` trigger, polling the sandbox."""
    trigger = ArchiveProgressTrigger(
        environment="sandbox",
        check="completion",
        arguments={"dsp_uuid": dsp_uuid, "submission_uuid": submission_uuid},
        poll_interval=0.2,
        deadline=time.time() + DEADLINE_SECONDS,
    )

    async def first_event() -> dict[str, Any]:
        events = trigger.run()
        event = await anext(events)
        await events.aclose()
        return event.payload

    event = asyncio.run(first_event())
    if event["status"] == "stopped":  # as Airflow resumes the task: its sensor notes the stop
        from hca_archive.orchestration.archive_dag import writeback_note

        sensor = completion_sensor("sandbox", stuck_note=writeback_note("sandbox", dsp_uuid))
        with pytest.raises(AirflowFailException):
            sensor.execute_complete({"ti": Ti(dsp_uuid)}, event, started=time.time())
    return event


def ready_to_complete(sandbox: SandboxInfo) -> tuple[str, str]:
    """A seeded submission whose one file is on DSP and valid: its ingest and DSP uuids."""
    [submission] = sandbox.seed(jobs=["plain"], reads=10)
    record = trigger_and_wait(sandbox, submission)
    [planned] = record["fileUploadPlan"][0]["files"]
    upload(sandbox, record["dspUuid"], planned["name"], s3_bytes(sandbox, planned["cloud_url"]))
    return submission, record["dspUuid"]


def stopped_wait(dsp_uuid: str, submission_uuid: str) -> str:
    """The message of a completion wait that stopped, soon, rather than running out."""
    started = time.monotonic()
    event = wait_for_completion(dsp_uuid, submission_uuid)
    assert event["status"] == "stopped", event  # not "timeout": that would have been 24 h
    assert time.monotonic() - started < DEADLINE_SECONDS / 2
    return event["message"]


def test_an_archiver_that_died_after_dsp_completed_is_noticed_and_a_clear_finishes_the_job(
    sandbox_faults: SandboxInfo, connections: None, airflow_variables: dict[str, object]
) -> None:
    from hca_archive.orchestration import archive_dag

    sandbox = sandbox_faults
    submission, dsp_uuid = ready_to_complete(sandbox)
    sandbox.set_faults("archiver", die_after_dsp_completes=True)
    context = {
        "ti": Ti(dsp_uuid),
        "params": {"environment": "sandbox", "submission_uuid": submission},
    }

    assert archive_dag.complete_submission.function(**context) == "completion triggered"
    died = f"complete {dsp_uuid}: DSP Completed; died before writing back"
    wait_for("the archiver to die", lambda: died in sandbox.log_path.read_text(), timeout=60)

    message = stopped_wait(dsp_uuid, submission)
    assert message.startswith(
        f"DSP submission {dsp_uuid} is Completed, but ingest submission {submission} is still "
        "Archiving 3 s later: the archiver did not write the accessions back"
    )
    assert "Clear complete_submission and the tasks after it" in message

    # The archiver is back; the wrangler clears complete_submission and the tasks after it.
    sandbox.clear_faults()
    outcome = archive_dag.complete_submission.function(**context)
    assert "asked the archiver again to write the accessions back" in outcome
    event = wait_for_completion(dsp_uuid, submission)
    assert (event["status"], event["message"]) == ("done", "Completed and Archived")
    assert all(entity["accession"] for entity in event["value"]["accessions"])

    summary = sandbox.submission_summary(submission)
    assert summary["envelope_state"] == "Archived"
    [dsp] = summary["dsp_submissions"]  # one DSP submission, submitted once, written back once
    assert (dsp["status"], dsp["complete_requests"], dsp["completions"]) == ("Completed", 2, 1)
    assert [file["uploaded_exactly_once"] for file in dsp["files"]] == [True]
    # A second clear finds the work done and asks nothing.
    assert "already Completed" in archive_dag.complete_submission.function(**context)
    assert sandbox.submission_summary(submission)["dsp_submissions"][0]["complete_requests"] == 2


def test_a_completion_request_that_made_nothing_is_noticed_and_a_clear_finishes_the_job(
    sandbox_faults: SandboxInfo, connections: None, airflow_variables: dict[str, object]
) -> None:
    """complete_submission noted its request, and the request never reached the archiver (or
    its background work died before submitting): DSP stays Draft. The wait stops instead of
    polling for 24 h; the cleared step asks again, and the job finishes."""
    from hca_archive.orchestration import archive_dag

    sandbox = sandbox_faults
    submission, dsp_uuid = ready_to_complete(sandbox)
    marker = f"hca_archive_complete__sandbox__{dsp_uuid}"
    airflow_variables[marker] = time.time() - 3600  # asked an hour ago; nothing arrived

    message = stopped_wait(dsp_uuid, submission)
    assert message.startswith(
        f"DSP submission {dsp_uuid} is still Draft 3 s after the archiver was asked to complete "
        "it: the archiver did not submit it"
    )
    from hca_archive.orchestration.archive_dag import writeback_note

    assert writeback_note("sandbox", dsp_uuid) not in airflow_variables  # no write-back seen

    context = {
        "ti": Ti(dsp_uuid),
        "params": {"environment": "sandbox", "submission_uuid": submission},
    }
    assert archive_dag.complete_submission.function(**context) == "completion triggered"
    event = wait_for_completion(dsp_uuid, submission)
    assert (event["status"], event["message"]) == ("done", "Completed and Archived")

    [dsp] = sandbox.submission_summary(submission)["dsp_submissions"]
    assert (dsp["status"], dsp["complete_requests"], dsp["completions"]) == ("Completed", 1, 1)
    assert [file["uploaded_exactly_once"] for file in dsp["files"]] == [True]
