"""A wait that runs out says, in plain words, how long it waited, what it last saw and what
clearing the task does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from hca_archive.archiving import plain_duration
from hca_archive.orchestration import request_operator
from hca_archive.orchestration.sensors import ArchiveProgressSensor
from tests.archiving.test_request_archive import UUID, request_archive_operator


class Ti:
    try_number = 1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def completion_sensor(environment: str = "dev", **options: Any) -> ArchiveProgressSensor:
    """The DAG's ``wait_for_completion`` sensor, for calling ``execute_complete`` on events."""
    return ArchiveProgressSensor(
        task_id="wait_for_completion",
        environment=environment,
        check="completion",
        arguments={},
        awaiting="DSP processing, accessions and the envelope Archived",
        **options,
    )


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(hours=24), "24 h"),
        (timedelta(hours=2), "2 h"),
        (timedelta(minutes=90), "1 h 30 min"),
        (timedelta(minutes=30), "30 min"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(0), "0 s"),
    ],
)
def test_durations_read_as_a_wrangler_says_them(span: timedelta, text: str) -> None:
    assert plain_duration(span) == text


def test_a_wait_that_ran_out_says_what_it_saw_and_what_clearing_does() -> None:
    sensor = completion_sensor(timeout=timedelta(hours=24))
    event = {"status": "timeout", "message": "DSP status Processing, envelope Archiving"}
    with pytest.raises(AirflowFailException) as raised:
        sensor.execute_complete({"ti": Ti()}, event, started=0)
    assert str(raised.value) == (
        "gave up waiting for DSP processing, accessions and the envelope Archived after 24 h; "
        "last seen: DSP status Processing, envelope Archiving. "
        "Clearing wait_for_completion waits another 24 h."
    )


def test_an_archiver_that_never_made_the_dsp_submission_says_who_to_ask(monkeypatch) -> None:
    class Marker:
        def __init__(self, environment: str, submission_uuid: str) -> None:
            pass

        def get(self, name: str) -> Any:
            return 3 if name == request_operator.REQUESTS else None

        def clear(self) -> None:
            pass

    monkeypatch.setattr(request_operator, "RequestMarker", Marker)
    operator = request_archive_operator()
    event = {"status": "timeout", "message": "no archive submission record yet"}
    with pytest.raises(AirflowFailException) as raised:
        operator.execute_complete({"ti": Ti()}, event, started=0, grace_seconds=1800)
    assert str(raised.value) == (
        f"the archiver made no DSP submission for {UUID} after 3 requests, each awaited 30 min: "
        "ask the archiver's operators what its log says; clearing request_archive asks again"
    )


def test_a_wait_stopped_on_a_stuck_status_notes_since_when_it_lasted(
    airflow_variables: dict[str, object],
) -> None:
    """The triggerer cannot write Variables: the sensor keeps the earliest time the stuck status
    was seen, which the cleared ``complete_submission`` needs to ask the archiver again."""
    sensor = completion_sensor(stuck_note="note")
    for since in (1000.0, 2000.0, 500.0):
        event = {"status": "stopped", "message": "not written back", "stuck_since": since}
        with pytest.raises(AirflowFailException, match=r"^not written back$"):
            sensor.execute_complete({"ti": Ti()}, event, started=0)
    assert airflow_variables["note"] == 500.0
