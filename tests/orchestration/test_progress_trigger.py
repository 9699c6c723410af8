"""The stuck-status count of the progress trigger survives a triggerer restart: the trigger is
run again from its serialised arguments, which carry what the sensor's own check saw and when."""

from __future__ import annotations

import asyncio
import importlib
import time
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred

from hca_archive.archiving import Progress
from hca_archive.orchestration import progress_checks, triggers
from hca_archive.orchestration.triggers import ArchiveProgressTrigger
from tests.archiving.test_wait_timeouts import Ti, completion_sensor

DRAFT = "DSP status Draft, envelope Archiving"
GRACE = 60.0


def draft_check(check: str, environment: str, arguments: dict[str, Any]) -> Progress:
    return Progress(False, DRAFT, stuck_after=GRACE, stuck="still Draft: clear it")


def restarted(trigger: ArchiveProgressTrigger) -> ArchiveProgressTrigger:
    """The trigger as a new triggerer builds it: from its class path and serialised arguments."""
    path, arguments = trigger.serialize()
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**arguments)


def first_event_within(trigger: ArchiveProgressTrigger, seconds: float) -> dict[str, Any] | None:
    async def first() -> dict[str, Any] | None:
        events = trigger.run()
        try:
            return (await asyncio.wait_for(anext(events), seconds)).payload
        except TimeoutError:
            return None
        finally:
            await events.aclose()

    return asyncio.run(first())


def waiting_trigger(**seen: Any) -> ArchiveProgressTrigger:
    return ArchiveProgressTrigger(
        environment="dev",
        check="completion",
        arguments={},
        poll_interval=0.05,
        deadline=time.time() + 3600,
        **seen,
    )


def test_a_status_stuck_since_the_wait_began_stops_at_once_after_a_restart(monkeypatch) -> None:
    monkeypatch.setattr(triggers, "run_check", draft_check)
    began = time.time() - GRACE - 1  # the sensor saw Draft a grace ago; the triggerer restarts
    trigger = restarted(waiting_trigger(seen_status=DRAFT, seen_since=began))
    event = first_event_within(trigger, 2.0)
    assert event == {"status": "stopped", "message": "still Draft: clear it"}


def test_a_status_that_changed_since_the_sensor_looked_is_counted_from_now(monkeypatch) -> None:
    monkeypatch.setattr(triggers, "run_check", draft_check)
    began = time.time() - GRACE - 1
    trigger = restarted(waiting_trigger(seen_status="DSP status Submitted", seen_since=began))
    assert first_event_within(trigger, 0.5) is None


def test_a_trigger_serialised_before_the_sensor_passed_what_it_saw_counts_from_now(
    monkeypatch,
) -> None:
    monkeypatch.setattr(triggers, "run_check", draft_check)
    _path, arguments = waiting_trigger().serialize()
    for name in ("seen_status", "seen_since"):
        del arguments[name]
    assert first_event_within(ArchiveProgressTrigger(**arguments), 0.5) is None


def test_the_sensor_hands_the_trigger_what_its_own_check_saw_and_when_it_answered(
    monkeypatch,
) -> None:
    """Counted from when the check answered, not from when it was asked: a slow check (DSP's
    retries) must not shorten the grace."""
    answered: list[float] = []

    def slow_draft_check(check: str, environment: str, arguments: dict[str, Any]) -> Progress:
        time.sleep(0.2)
        answered.append(time.time())
        return draft_check(check, environment, arguments)

    monkeypatch.setattr(progress_checks, "run_check", slow_draft_check)
    with pytest.raises(TaskDeferred) as deferred:
        completion_sensor().execute({"ti": Ti()})
    trigger = deferred.value.trigger
    assert trigger.seen_status == DRAFT
    assert answered[0] <= trigger.seen_since <= time.time()
