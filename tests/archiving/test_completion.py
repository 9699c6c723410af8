"""Completing the DSP submission and waiting for it: asked once, every end state recognised."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from hca_archive import archiving
from hca_archive.archiving import (
    ENVELOPE_GONE_SECONDS,
    RunStopped,
    complete_submission,
    completion_progress,
)
from hca_archive.clients.archiver import ArchiveEntity
from hca_archive.clients.dsp import ProcessingStatus
from hca_archive.clients.ingest import Envelope
from hca_archive.http import ServiceError

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
DSP_UUID = "b729f228-0000-4000-8000-000000000001"


@dataclass
class Services:
    """The archiver, DSP and ingest as a completion sees them."""

    status: str = "Draft"
    envelope_state: str | None = "Archiving"  # None: ingest no longer knows the envelope
    items: list[ProcessingStatus] = field(default_factory=list)
    completes: list[str] = field(default_factory=list)
    lose_complete_answer: bool = False
    # the archiver's background work: DSP leaves Draft at this look after a complete arrived
    submitted_at_look: int | None = None
    looks: int = 0

    # archiver
    def complete(self, dsp_uuid: str) -> str:
        self.completes.append(dsp_uuid)
        if self.lose_complete_answer:  # it arrived; the answer did not
            raise ServiceError("ReadTimeout", method="POST", url="https://archiver/complete")
        return "successfully triggered!"

    def entities(self, dsp_uuid: str) -> list[ArchiveEntity]:
        return [ArchiveEntity("project", "HCA_project_1", "e-1", "S-1", ())]

    # DSP
    def status_of(self, dsp_uuid: str) -> str:
        self.looks += 1
        started = self.completes and self.submitted_at_look is not None
        if started and self.looks >= self.submitted_at_look:
            self.status = "Submitted"
        return self.status

    def processing_statuses(self, dsp_uuid: str) -> list[ProcessingStatus]:
        return self.items

    # ingest
    def find_envelope(self, uuid: str) -> Envelope | None:
        if self.envelope_state is None:
            return None
        return Envelope(uuid, self.envelope_state, None, None)


class Dsp:
    def __init__(self, services: Services) -> None:
        self.services = services

    def status(self, dsp_uuid: str) -> str:
        return self.services.status_of(dsp_uuid)

    def processing_statuses(self, dsp_uuid: str) -> list[ProcessingStatus]:
        return self.services.processing_statuses(dsp_uuid)


def progress(services: Services, writeback_grace: timedelta | None = None):
    grace = (lambda: writeback_grace) if writeback_grace else None
    return completion_progress(services, Dsp(services), services, DSP_UUID, UUID, grace)


class Marker:
    """Stands in for the Airflow Variable that outlives a task's retries."""

    def __init__(
        self,
        grace_seconds: float = 1800,
        writeback_grace_seconds: float = 3600,
        envelope_gone_seconds: float = 0.05,
    ) -> None:
        self.envelope_gone_seconds = envelope_gone_seconds
        self.requested_at: float | None = None
        self.grace_seconds = grace_seconds
        self.writeback_grace_seconds = writeback_grace_seconds
        self.writeback_seen_at: float | None = None

    def mark(self) -> None:
        self.requested_at = time.time()

    def mark_writeback_seen(self) -> None:
        self.writeback_seen_at = time.time()

    def complete(self, services: Services) -> str:
        return complete_submission(
            services,
            Dsp(services),
            services,
            DSP_UUID,
            UUID,
            requested_at=self.requested_at,
            grace_seconds=self.grace_seconds,
            writeback_grace_seconds=self.writeback_grace_seconds,
            mark_requested=self.mark,
            writeback_seen_at=self.writeback_seen_at,
            mark_writeback_seen=self.mark_writeback_seen,
            poll_seconds=0.01,
            envelope_gone_seconds=self.envelope_gone_seconds,
        )


def test_a_retry_after_a_lost_answer_waits_for_dsp_to_leave_draft_and_asks_once() -> None:
    services, marker = Services(lose_complete_answer=True), Marker()
    with pytest.raises(ServiceError):
        marker.complete(services)
    services.lose_complete_answer = False
    services.submitted_at_look = services.looks + 3  # the background work is a little slow
    assert "already Submitted" in marker.complete(services)
    assert services.completes == [DSP_UUID]


def test_a_request_that_never_arrived_is_made_again_once_the_grace_period_is_over() -> None:
    services, marker = Services(), Marker(grace_seconds=0.1)
    marker.mark()  # noted, then the worker died before the POST got out
    started = time.monotonic()
    assert marker.complete(services) == "completion triggered"
    assert time.monotonic() - started >= 0.09  # it watched DSP for the rest of the grace first
    assert services.completes == [DSP_UUID]


@pytest.mark.parametrize(
    ("status", "state"),
    [("Submitted", "Archiving"), ("Completed", "Archived"), ("Completed", "Exporting")],
)
def test_a_submission_past_draft_is_not_completed_again(status: str, state: str) -> None:
    services = Services(status=status, envelope_state=state)
    assert f"already {status}" in Marker().complete(services)
    assert services.completes == []


def test_a_completed_submission_never_written_back_is_asked_again_once_the_grace_is_over() -> None:
    """The archiver died after DSP completed: only asking again writes the accessions back, and
    it is safe (the archiver submits only a Draft). A clear of the step must do it."""
    services, marker = Services(status="Completed"), Marker(writeback_grace_seconds=60)
    marker.requested_at = time.time() - 61  # the request that DSP completed, an hour ago say
    marker.writeback_seen_at = time.time() - 61  # noted by the wait that stopped on it
    assert "asked the archiver again" in marker.complete(services)
    assert services.completes == [DSP_UUID]
    assert time.time() - marker.requested_at < 5  # noted again, before the call


def test_a_clear_just_after_dsp_completed_leaves_the_write_back_under_way_alone() -> None:
    """DSP processed for hours after our request; it has just completed and the archiver is
    writing the accessions back. A clear (or a second run) then must not ask again: the grace
    counts from when DSP was seen Completed with the envelope not archived, not from the request."""
    services, marker = Services(status="Completed"), Marker(writeback_grace_seconds=3600)
    marker.requested_at = time.time() - 5 * 3600
    assert "not asked again" in marker.complete(services)
    assert services.completes == []
    assert marker.writeback_seen_at is not None  # noted: a clear an hour on asks
    marker.writeback_seen_at -= 3600
    assert "asked the archiver again" in marker.complete(services)
    assert services.completes == [DSP_UUID]


def test_a_write_back_asked_for_again_is_not_asked_a_third_time_within_the_grace() -> None:
    """The write-back was first seen long ago and asked for again just now (a clear); a second
    clear soon after must leave that new write-back alone, however old the first sighting."""
    services, marker = Services(status="Completed"), Marker(writeback_grace_seconds=60)
    marker.writeback_seen_at = time.time() - 3600
    assert "asked the archiver again" in marker.complete(services)
    assert "not asked again" in marker.complete(services)
    assert services.completes == [DSP_UUID]


def test_a_completed_submission_whose_write_back_may_still_run_is_not_asked_again() -> None:
    services, marker = Services(status="Completed"), Marker(writeback_grace_seconds=60)
    marker.requested_at = time.time() - 30
    assert marker.complete(services) == (
        "DSP submission Completed, envelope Archiving; the archiver was asked 30 s ago and may "
        "still be writing the accessions back: not asked again"
    )
    assert services.completes == []


class FakeTi:
    try_number = 1

    def xcom_pull(self, task_ids: str) -> dict:
        return {"dsp_uuid": DSP_UUID}

    def xcom_push(self, key: str, value: object) -> None:
        pass


class FakeHook:
    def __init__(self, services: Services) -> None:
        self.archiver, self.dsp, self.ingest = services, Dsp(services), services

    def complete_grace(self) -> timedelta:
        return timedelta(minutes=30)

    def writeback_grace(self) -> timedelta:
        return timedelta(hours=1)


def test_the_task_retried_after_a_lost_answer_asks_once(
    monkeypatch: pytest.MonkeyPatch, airflow_variables: dict[str, object]
) -> None:
    from hca_archive.orchestration import archive_dag

    services = Services(lose_complete_answer=True)
    monkeypatch.setattr(archive_dag, "_hook", lambda context: FakeHook(services))
    context = {"ti": FakeTi(), "params": {"environment": "dev", "submission_uuid": UUID}}
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    with pytest.raises(ServiceError):
        archive_dag.complete_submission.function(**context)
    services.lose_complete_answer = False
    services.submitted_at_look = services.looks + 2
    assert "already Submitted" in archive_dag.complete_submission.function(**context)  # retry
    assert services.completes == [DSP_UUID]


@pytest.mark.parametrize("state", ["Archived", "Exporting", "Exported", "Cleanup", "Complete"])
def test_completion_is_done_once_the_envelope_is_archived_or_past_it(state: str) -> None:
    services = Services(status="Completed", envelope_state=state)
    answer = progress(services)
    assert answer.done
    assert answer.value == {
        "accessions": [{"type": "project", "alias": "HCA_project_1", "accession": "S-1"}]
    }


def test_completion_waits_while_the_envelope_is_archiving() -> None:
    assert not progress(Services(status="Completed", envelope_state="Archiving")).done


def test_a_completed_submission_left_archiving_is_stuck_after_the_write_back_grace() -> None:
    services = Services(status="Completed")
    answer = progress(services, timedelta(hours=1))
    assert not answer.done and answer.stuck_after == 3600
    assert answer.stuck.startswith(
        f"DSP submission {DSP_UUID} is Completed, but ingest submission {UUID} is still "
        "Archiving 1 h later: the archiver did not write the accessions back"
    )
    assert "Clear complete_submission" in answer.stuck
    assert answer.stuck_noted  # the cleared step counts the write-back's grace from it
    # while DSP is still at work, the status may last: it is not stuck
    services.status = "Processing"
    assert progress(services, timedelta(hours=1)).stuck_after is None


def test_a_submission_left_draft_is_stuck_after_the_grace() -> None:
    """complete_submission asked just before the wait began: DSP still Draft an hour later
    means the archiver's background work died before submitting (or never got the request)."""
    answer = progress(Services(status="Draft"), timedelta(hours=1))
    assert not answer.done and answer.stuck_after == 3600
    assert answer.stuck.startswith(
        f"DSP submission {DSP_UUID} is still Draft 1 h after the archiver was asked to complete "
        "it: the archiver did not submit it"
    )
    assert "while DSP is Draft it asks the archiver again" in answer.stuck
    assert not answer.stuck_noted  # no write-back was seen: nothing for the cleared step to count


@pytest.mark.parametrize("item_status", ["Rejected", "Error"])
def test_an_item_dsp_will_never_accession_stops_the_wait_naming_it(item_status: str) -> None:
    services = Services(
        status="Processing",
        items=[
            ProcessingStatus("samples", "HCA_sample_1", "Completed", "SAMEA1", "BioSamples"),
            ProcessingStatus("sequencingRuns", "HCA_run_1", item_status, None, "Ena"),
        ],
    )
    with pytest.raises(RunStopped) as raised:
        progress(services)
    assert str(raised.value) == (
        f"DSP submission {DSP_UUID}: 1 item(s) will never be accessioned: "
        f"sequencingRuns HCA_run_1: {item_status} by Ena. "
        "Ask DSP's helpdesk why, naming the DSP submission and the items"
    )


def test_items_still_in_processing_are_awaited() -> None:
    services = Services(
        status="Processing",
        items=[ProcessingStatus("samples", "HCA_sample_1", "Curation", None, "BioSamples")],
    )
    assert not progress(services).done


def test_the_request_is_marked_before_the_call_so_a_worker_killed_during_it_counts() -> None:
    """A worker killed during the POST runs no except or finally: the mark must already be
    stored while the call is in flight, or the retry asks DSP to complete a second time."""
    marker = Marker()
    marked_during_the_call: list[bool] = []

    class WatchedServices(Services):
        def complete(self, dsp_uuid: str) -> str:
            marked_during_the_call.append(marker.requested_at is not None)
            return super().complete(dsp_uuid)

    assert marker.complete(WatchedServices()) == "completion triggered"
    assert marked_during_the_call == [True]


def test_a_failed_dsp_submission_stops_the_wait_at_once() -> None:
    """DSP's own Failed, with no item listed as Rejected or Error and the envelope still in
    Archiving: nothing will change by waiting, so the wait must end (it would poll for hours)."""
    services = Services(status="Failed")
    with pytest.raises(RunStopped, match=f"^DSP submission {DSP_UUID} failed: waiting will not"):
        progress(services)


@pytest.mark.parametrize("status", ["Draft", "Processing", "Completed"])
def test_an_envelope_deleted_during_completion_stops_the_wait_once_confirmed(status: str) -> None:
    """Not an hour of "envelope missing" and then a message blaming the archiver's write-back:
    the wait stops once ingest has not found the envelope for ENVELOPE_GONE_SECONDS."""
    services = Services(status=status, envelope_state=None)
    answer = progress(services, timedelta(hours=1))
    assert not answer.done and answer.status == f"DSP status {status}, envelope not found in ingest"
    assert answer.stuck_after == ENVELOPE_GONE_SECONDS and not answer.stuck_noted
    assert answer.stuck.startswith(
        f"ingest submission {UUID} is no longer found in ingest (for 10 min) while DSP "
        f"submission {DSP_UUID} is {status}: nothing can write the accessions back"
    )


def test_completing_a_completed_submission_whose_envelope_was_deleted_asks_nothing() -> None:
    services = Services(status="Completed", envelope_state=None)
    with pytest.raises(RunStopped, match=f"^ingest submission {UUID} is no longer found"):
        Marker().complete(services)
    assert services.completes == []


class OneMissingAnswer(Services):
    """Ingest answers one lookup 404 (a proxy during a redeploy), then finds the envelope."""

    missed = False

    def find_envelope(self, uuid: str) -> Envelope | None:
        if not self.missed:
            self.missed = True
            return None
        return super().find_envelope(uuid)


def test_one_not_found_answer_does_not_stop_complete_submission() -> None:
    services = OneMissingAnswer(status="Completed", envelope_state="Archived")
    assert Marker(envelope_gone_seconds=60).complete(services) == (
        "DSP submission already Completed; not completed again"
    )
    assert services.completes == []


def test_one_not_found_answer_does_not_stop_the_completion_wait(monkeypatch) -> None:
    """The trigger polls ingest every 15 s for up to 24 h: one 404 must not end the run."""
    import asyncio

    from hca_archive.orchestration import triggers
    from hca_archive.orchestration.triggers import ArchiveProgressTrigger

    services = OneMissingAnswer(status="Completed", envelope_state="Archived")
    monkeypatch.setattr(
        triggers, "run_check", lambda check, environment, arguments: progress(services)
    )
    trigger = ArchiveProgressTrigger("dev", "completion", {}, 0.01, time.time() + 60)

    async def first_event():
        events = trigger.run()
        try:
            return (await asyncio.wait_for(anext(events), 5)).payload
        finally:
            await events.aclose()

    event = asyncio.run(first_event())
    assert event["status"] == "done", event

    # an envelope that stays unfound does stop the wait, naming it
    services = Services(status="Completed", envelope_state=None)
    monkeypatch.setattr(archiving, "ENVELOPE_GONE_SECONDS", 0.05)
    event = asyncio.run(first_event())
    assert event["status"] == "stopped", event
    assert event["message"].startswith(f"ingest submission {UUID} is no longer found in ingest")
