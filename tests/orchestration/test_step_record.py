"""The record a step leaves for the report: a failure in the words written for the wrangler."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from hca_archive.http import ServiceError
from hca_archive.orchestration.step_record import STEP_XCOM_KEY, recorded_step


class Ti:
    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class LastTi(Ti):
    """The last of five tries (Airflow's ``max_tries`` counts the retries)."""

    task_id = "check_submission"
    try_number = 5
    max_tries = 4


def failed_outcome(error: Exception, ti: Ti | None = None) -> str:
    ti = ti or Ti()
    with pytest.raises(type(error)), recorded_step({"ti": ti}):
        raise error
    assert ti.pushed[STEP_XCOM_KEY]["state"] == "failed"
    return ti.pushed[STEP_XCOM_KEY]["outcome"]


def test_a_failed_file_job_is_recorded_without_pythons_class_name() -> None:
    message = "1 file job(s) failed: m2/b.fastq.gz: md5 mismatch"
    assert failed_outcome(AirflowException(message)) == message


def test_a_service_that_failed_every_try_is_recorded_in_its_own_words() -> None:
    error = ServiceError("Internal Server Error", status=500, method="GET", url="http://ingest/x")
    assert failed_outcome(error) == "GET http://ingest/x: HTTP 500: Internal Server Error"


def test_a_bug_keeps_its_class_name_which_its_message_needs() -> None:
    assert failed_outcome(KeyError("dsp_uuid")) == "KeyError: 'dsp_uuid'"


def service_error(status: int | None) -> ServiceError:
    return ServiceError("Connection refused", status=status, method="GET", url="http://ingest/x")


@pytest.mark.parametrize("status", [None, 502, 503])
def test_the_last_try_at_a_service_that_is_down_says_to_clear_the_task_once_it_answers(
    status: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = failed_outcome(service_error(status), LastTi())
    assert outcome.startswith(str(service_error(status)))
    hint = "the last of 5 tries: clear check_submission once the service answers again"
    assert outcome.endswith(hint)
    assert hint in caplog.text  # the task log says it too, above the traceback


def test_no_such_hint_before_the_last_try_or_for_a_refusal() -> None:
    """A retry is still to come; a 4xx is an answer, which clearing the task would get again."""
    assert failed_outcome(service_error(None)) == str(service_error(None))
    assert failed_outcome(service_error(404), LastTi()) == str(service_error(404))
