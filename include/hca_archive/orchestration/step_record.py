"""Every step of a run leaves one record: how long it took, what it concluded, or why it failed.

The report task gathers these records from XCom (key ``step``) to tell the run's story. A failure
that retrying cannot fix (``RunStopped``) fails the task at once, without a stack trace.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from hca_archive.archiving import RunStopped

log = logging.getLogger(__name__)

STEP_XCOM_KEY = "step"


class StepRecord:
    """What a step tells the report; its body sets ``outcome``, or ``deferred`` to say "not yet"."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.outcome = ""
        self.deferred = False


@contextlib.contextmanager
def recorded_step(context: Any, started: float | None = None) -> Iterator[StepRecord]:
    """Time the step and push its record; turn ``RunStopped`` into a failure without retries."""
    record = StepRecord(started or time.time())
    ti = context["ti"]
    try:
        yield record
    except AirflowSkipException as skip:
        log.info("skipped: %s", skip)
        _push(ti, record, "skipped", str(skip))
        raise
    except RunStopped as stopped:
        _push(ti, record, "failed", str(stopped))
        log.error("%s", stopped)
        raise AirflowFailException(str(stopped)) from None
    except Exception as error:
        text = failure_text(error)
        if hint := last_try_hint(ti, error):
            log.error("%s", hint)
            text = f"{text}; {hint}"
        _push(ti, record, "failed", text)
        raise
    if not record.deferred:
        _push(ti, record, "succeeded", record.outcome)


def failure_text(error: Exception) -> str:
    """What the report says about an exception: its message, with its class name only when the
    message is not written for people (a bug's ``KeyError: 'dsp_uuid'``, say)."""
    # Imported here: the DAG file imports this module, and parsing loads no HTTP client.
    from hca_archive.http import ServiceError

    if isinstance(error, (AirflowException, ServiceError)) and str(error):
        return str(error)
    return f"{type(error).__name__}: {error}"


def last_try_hint(ti: Any, error: Exception) -> str:
    """What to do when the last try failed because a service did not answer (or answered 5xx):
    no retry is left, and a wrangler would otherwise not know that clearing the task is enough."""
    from hca_archive.http import ServiceError

    if not isinstance(error, ServiceError) or (error.status or 500) < 500:
        return ""
    max_tries = getattr(ti, "max_tries", None)
    if not isinstance(max_tries, int) or ti.try_number <= max_tries:
        return ""  # a retry is to come (or Airflow did not say how many)
    return f"the last of {ti.try_number} tries: clear {ti.task_id} once the service answers again"


def _push(ti: Any, record: StepRecord, state: str, outcome: str) -> None:
    ti.xcom_push(
        key=STEP_XCOM_KEY,
        value={
            "state": state,
            "outcome": outcome,
            "seconds": round(time.time() - record.started, 3),
            "try_number": ti.try_number,
        },
    )
