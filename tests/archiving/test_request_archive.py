"""The request step asks the (non-idempotent) archiver at most once per submission."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from hca_archive.archiving import (
    ArchiveRequest,
    ArchiverRefused,
    RunStopped,
    check_envelope,
    dsp_submission_progress,
    request_archive,
)
from hca_archive.clients.archiver import ArchiveEntity, ArchiveSubmission, archive_errors
from hca_archive.clients.ingest import Envelope
from hca_archive.http import ServiceError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"


@dataclass
class SlowArchiver:
    """Like the real service: a trigger makes a record only after background work."""

    triggers: list[str] = field(default_factory=list)
    record_visible: bool = False
    entity_docs: list[dict] = field(default_factory=list)

    def latest(self, submission_uuid: str) -> ArchiveSubmission | None:
        if not (self.triggers and self.record_visible):
            return None
        return ArchiveSubmission.from_json({"dspUuid": "dsp-1", "submissionUuid": submission_uuid})

    def trigger_archive(self, submission_uuid: str, **kwargs: object) -> None:
        self.triggers.append(submission_uuid)

    def entities(self, dsp_uuid: str) -> list[ArchiveEntity]:
        assert dsp_uuid == "dsp-1"
        return [
            ArchiveEntity(doc["type"], doc["alias"], None, None, archive_errors(doc["errors"]))
            for doc in self.entity_docs
        ]


class Store:
    """Stands in for Airflow's task state store, which outlives a task's retries."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def mark(self) -> bool:
        self.values["triggered_at"] = time.time()
        return True

    def request(self, archiver: SlowArchiver, **overrides: object) -> ArchiveRequest:
        options = {
            "alias_prefix": "HCA",
            "exclude_types": None,
            "triggered_at": self.values.get("triggered_at"),
            "trigger_grace_seconds": 3600,
            "mark_triggered": self.mark,
        }
        options.update(overrides)
        return request_archive(archiver, UUID, **options)


def test_a_retry_before_the_record_appears_does_not_trigger_again() -> None:
    archiver, store = SlowArchiver(), Store()
    assert store.request(archiver).action == "triggered"
    assert store.request(archiver).action == "awaiting-earlier-trigger"
    assert archiver.triggers == [UUID]


def test_the_record_is_reused_once_it_exists() -> None:
    archiver, store = SlowArchiver(), Store()
    store.request(archiver)
    archiver.record_visible = True
    request = store.request(archiver)
    assert request.action == "reused"
    assert request.record["dsp_uuid"] == "dsp-1"
    assert archiver.triggers == [UUID]


def test_the_trigger_is_marked_before_the_call_so_a_crash_during_it_counts() -> None:
    store = Store()
    marked_during_the_call: list[bool] = []

    class CrashingArchiver(SlowArchiver):
        def trigger_archive(self, submission_uuid: str, **kwargs: object) -> None:
            # A worker killed here runs no later code (no except, no finally): the mark must
            # already be stored while the call is in flight.
            marked_during_the_call.append("triggered_at" in store.values)
            raise ConnectionError("worker died mid-call")

    with pytest.raises(ConnectionError):
        store.request(CrashingArchiver())
    assert marked_during_the_call == [True]
    assert "triggered_at" in store.values


def test_after_the_grace_period_a_lost_trigger_is_repeated() -> None:
    archiver, store = SlowArchiver(), Store()
    store.request(archiver)
    store.values["triggered_at"] -= 7200
    assert store.request(archiver).action == "triggered"
    assert archiver.triggers == [UUID, UUID]


def test_a_lost_claim_waits_for_the_winner() -> None:
    archiver = SlowArchiver()
    assert Store().request(archiver, mark_triggered=lambda: False).action == (
        "awaiting-earlier-trigger"
    )
    assert archiver.triggers == []


def test_dry_run_never_triggers() -> None:
    archiver = SlowArchiver()
    assert Store().request(archiver, dry_run=True).action == "dry-run"
    assert archiver.triggers == []


class OneEnvelope:
    def __init__(self, state: str | None) -> None:
        self.state = state

    def find_envelope(self, uuid: str) -> Envelope | None:
        if self.state is None:
            return None
        return Envelope(
            uuid=uuid, state=self.state, submission_date=None, update_date=None, links={}
        )


def test_unknown_submission_names_uuid_and_environment_and_what_to_check() -> None:
    with pytest.raises(RunStopped) as raised:
        check_envelope(OneEnvelope(None), UUID, "staging")
    assert str(raised.value) == (
        f"submission {UUID} not found in staging: check the UUID (the ingest submission's, not "
        "its project's) and the environment, then start a new run"
    )


def test_submission_in_another_state_is_refused_saying_when_to_try_again() -> None:
    with pytest.raises(RunStopped) as raised:
        check_envelope(OneEnvelope("Valid"), UUID, "dev")
    assert str(raised.value) == (
        f"submission {UUID} is Valid, not Archiving: nothing archived. Once ingest shows it "
        "Archiving, clear check_submission (or start a new run)"
    )


@pytest.mark.parametrize("state", ["Archiving", "Archived", "Exporting", "Complete"])
def test_archiving_and_archived_or_later_pass(state: str) -> None:
    assert check_envelope(OneEnvelope(state), UUID, "prod").state == state


class ArchiverWithErrors(SlowArchiver):
    """A record the archiver built in part: an entity failed to convert."""

    def latest(self, submission_uuid: str) -> ArchiveSubmission | None:
        if not (self.triggers and self.record_visible):
            return None
        error = {"errorCode": "ArchiveEntityError", "message": "sample HCA_sample_7: no taxon"}
        return ArchiveSubmission.from_json(
            {"dspUuid": "dsp-1", "submissionUuid": submission_uuid, "errors": [error]}
        )


def test_a_record_built_with_errors_stops_the_wait_naming_them() -> None:
    archiver = ArchiverWithErrors(triggers=[UUID], record_visible=True)
    with pytest.raises(RunStopped, match="ArchiveEntityError: sample HCA_sample_7: no taxon"):
        dsp_submission_progress(archiver, UUID)


def test_a_record_built_with_errors_is_not_reused() -> None:
    archiver = ArchiverWithErrors(triggers=[UUID], record_visible=True)
    with pytest.raises(RunStopped, match=r"1 error.*DSP submission dsp-1"):
        Store().request(archiver)
    assert archiver.triggers == [UUID]


ENTITY_ERRORS = [
    {"type": "project", "alias": "HCA_project_1", "errors": []},
    {
        "type": "sample",
        "alias": "HCA_sample_7",
        "errors": [{"errorCode": "ConversionError", "message": "no taxon id"}, "DSP said 400"],
    },
]


def test_entities_with_errors_stop_the_wait_naming_them() -> None:
    archiver = SlowArchiver(triggers=[UUID], record_visible=True, entity_docs=ENTITY_ERRORS)
    with pytest.raises(RunStopped) as stopped:
        dsp_submission_progress(archiver, UUID)
    assert str(stopped.value) == (
        "the archiver reported errors on 1 entity of DSP submission dsp-1:\n"
        "- sample HCA_sample_7: ConversionError: no taxon id; DSP said 400"
    )


def test_a_record_whose_entities_have_errors_is_not_reused() -> None:
    archiver = SlowArchiver(triggers=[UUID], record_visible=True, entity_docs=ENTITY_ERRORS)
    with pytest.raises(RunStopped, match="errors on 1 entity"):
        Store().request(archiver)
    assert archiver.triggers == [UUID]


def test_entity_errors_are_shown_bounded_on_one_line_each() -> None:
    """The archiver's text is untrusted: no forged lines, no megabytes in the task's event."""
    docs = [
        {
            "type": "sample",
            "alias": "HCA_s1\n- project HCA_p: all fine",
            "errors": [{"message": "x" * 5_000_000}, "second\nline", *["more"] * 100_000],
        },
        {"type": "project", "alias": "HCA_p", "errors": [None, "", {}]},  # no errors at all
    ]
    archiver = SlowArchiver(triggers=[UUID], record_visible=True, entity_docs=docs)
    with pytest.raises(RunStopped) as stopped:
        dsp_submission_progress(archiver, UUID)
    heading, line = str(stopped.value).splitlines()
    assert heading == "the archiver reported errors on 1 entity of DSP submission dsp-1:"
    assert line.startswith("- sample HCA_s1 - project HCA_p: all fine: xxx")
    assert line.endswith("…; second line; more; ... and 99999 more")
    assert len(line) < 1_000


def test_entities_without_errors_let_the_wait_end() -> None:
    archiver = SlowArchiver(triggers=[UUID], record_visible=True, entity_docs=ENTITY_ERRORS[:1])
    assert dsp_submission_progress(archiver, UUID).done


class StepTi:
    try_number = 1

    def xcom_push(self, key: str, value: object) -> None:
        pass


@pytest.mark.parametrize("state", ["Archived", "Exporting"])
def test_a_run_for_a_submission_archived_or_past_it_skips(monkeypatch, state: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from hca_archive.orchestration import archive_dag

    class Hook:
        ingest = OneEnvelope(state)

    monkeypatch.setattr(archive_dag, "_hook", lambda context: Hook())
    params = {"environment": "dev", "submission_uuid": UUID, "dry_run": False}
    with pytest.raises(AirflowSkipException, match=f"is {state}: already archived, nothing to do"):
        archive_dag.check_submission.function(ti=StepTi(), params=params)


class RefusingArchiver(SlowArchiver):
    def trigger_archive(self, submission_uuid: str, **kwargs: object) -> None:
        super().trigger_archive(submission_uuid)
        raise ServiceError(
            "submission_uuid is not a known submission", status=400, method="POST", url="x"
        )


def test_a_refused_request_stops_the_run_with_the_archivers_words() -> None:
    store = Store()
    with pytest.raises(
        ArchiverRefused,
        match=r"refused to archive submission .*: HTTP 400: .*not a known submission",
    ):
        store.request(RefusingArchiver())


def test_a_refused_request_leaves_no_note_that_would_delay_the_next(
    monkeypatch, airflow_variables
) -> None:
    import airflow.sdk
    from airflow.sdk.exceptions import AirflowFailException

    from hca_archive.orchestration import hooks, request_operator

    class Hook:
        archiver = RefusingArchiver()

        def request_grace(self) -> timedelta:
            return timedelta(minutes=30)

    monkeypatch.setattr(request_operator, "Variable", airflow.sdk.Variable)  # the fixture's
    monkeypatch.setattr(request_operator, "CLAIM_SETTLE_SECONDS", 0)
    monkeypatch.setattr(hooks, "HcaArchiveHook", lambda environment: Hook())
    operator = request_archive_operator()
    with pytest.raises(AirflowFailException, match="the archiver refused"):
        operator.execute({"ti": StepTi()})
    assert Hook.archiver.triggers == [UUID]
    assert airflow_variables == {}


def request_archive_operator() -> BaseOperator:
    """The DAG's request_archive task for UUID (imported here: Airflow loads only when used)."""
    from hca_archive.orchestration.request_operator import RequestArchiveOperator

    return RequestArchiveOperator(
        task_id="request_archive",
        environment="dev",
        submission_uuid=UUID,
        alias_prefix="HCA",
        exclude_types=[],
        dry_run=False,
    )
