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


def failed_outcome(error: Exception) -> str:
    ti = Ti()
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
