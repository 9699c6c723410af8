"""A failed batch fails its task; without a retry when running it again cannot help."""

from __future__ import annotations

import logging

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from hca_archive.orchestration.file_job_results import check_result

LOG = logging.getLogger(__name__)


def job(label: str, status: str, retryable: bool | None = True) -> dict:
    entry = {"label": label, "status": status, "error": None if status == "succeeded" else "x"}
    if retryable is not None:  # results of older releases carry no such field
        entry["retryable"] = retryable
    return entry


def test_a_batch_whose_failures_are_all_in_its_inputs_is_not_retried():
    result = {"jobs": [job("m1/a", "failed", False), job("m2/b", "succeeded")]}
    with pytest.raises(AirflowFailException, match="not retried: running again cannot fix it"):
        check_result(result, LOG)


@pytest.mark.parametrize("second", [True, None])
def test_one_failure_a_retry_may_fix_keeps_the_retries(second):
    result = {"jobs": [job("m1/a", "failed", False), job("m2/b", "failed", second)]}
    with pytest.raises(AirflowException) as raised:
        check_result(result, LOG)
    assert not isinstance(raised.value, AirflowFailException)


def test_no_result_at_all_keeps_the_retries():
    with pytest.raises(AirflowException) as raised:
        check_result({"jobs": []}, LOG)
    assert not isinstance(raised.value, AirflowFailException)
