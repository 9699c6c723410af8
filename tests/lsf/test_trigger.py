"""LsfJobTrigger and its shared poller: failures, shutdown, and the operator's own re-check."""

from __future__ import annotations

import asyncio
import importlib
import json

import pytest
from airflow.sdk.exceptions import TaskDeferred

from hca_archive.localnet import free_port
from hca_archive.lsf.outputs import BjobsAnswer, JobState
from hca_archive.orchestration.lsf import poller
from hca_archive.orchestration.lsf.trigger import LsfJobTrigger
from tests.lsf.conftest import context, first_event, operator, plan_job, wait_for


def test_the_trigger_survives_serialization_as_the_triggerer_does_it():
    trigger = LsfJobTrigger(
        "hpc_lsf", "123", "hca-x-0-abc", "/scratch/run/job-0", poll_interval=5.0
    )
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs)
    assert (again.job_id, again.poll_interval) == ("123", 5.0)


def running(*job_ids: str) -> BjobsAnswer:
    return BjobsAnswer(tuple(JobState(job_id, "RUN", None) for job_id in job_ids), frozenset())


def test_only_polls_failing_in_a_row_tell_the_waiting_triggers(monkeypatch):
    """A poll that works in between starts the count again: a flaky bjobs now and then must not
    send every waiting task to look for itself."""
    monkeypatch.setattr(poller, "MAX_FAILURES", 2)
    monkeypatch.setattr(poller, "MAX_BACKOFF", 0.01)
    answers = iter(
        [OSError("dropped"), running("7"), OSError("dropped"), running("7"), running("7")]
    )

    async def query(self, job_ids):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(poller.BjobsPoller, "_query", query)

    async def three_updates() -> list:
        waiting = poller.poller_for("hpc_flaky")
        queue = waiting.subscribe("7", 0.01)
        updates = [await asyncio.wait_for(queue.get(), 5) for _ in range(3)]
        waiting.unsubscribe("7", queue)
        return updates

    updates = asyncio.run(three_updates())
    assert [(update.error, update.state.stat) for update in updates] == [(None, "RUN")] * 3


def test_the_poller_asks_as_often_as_its_most_eager_trigger(monkeypatch):
    async def query(self, job_ids):
        return running(*job_ids)

    monkeypatch.setattr(poller.BjobsPoller, "_query", query)

    async def updates_of_the_eager_one() -> None:
        waiting = poller.poller_for("hpc_eager")
        patient = waiting.subscribe("1", 3600)
        eager = waiting.subscribe("2", 0.01)
        for _ in range(3):
            await asyncio.wait_for(eager.get(), 5)
        waiting.unsubscribe("1", patient)
        waiting.unsubscribe("2", eager)

    asyncio.run(updates_of_the_eager_one())  # the patient one's hour would time the wait out


@pytest.mark.integration
def test_the_poller_closes_down_when_no_trigger_is_left(lsf_quick, hpc_connection):
    op, ctx = operator(hpc_connection, plan_job("manifest-close")), context("close")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    trigger = deferred.value.trigger

    async def wait_then_watch_the_registry() -> tuple[dict, bool]:
        event = await first_event(trigger)
        registered = bool(poller._POLLERS)
        for _ in range(100):
            if not poller._POLLERS:
                break
            await asyncio.sleep(0.05)
        return event, registered

    event, registered_while_waiting = asyncio.run(wait_then_watch_the_registry())
    assert json.loads(json.dumps(event)) == event  # the triggerer stores it as JSON
    assert event["stat"] == "DONE"
    assert registered_while_waiting
    assert poller._POLLERS == {}


@pytest.fixture
def unreachable_poller(hpc, monkeypatch) -> str:
    """The triggerer cannot reach the cluster (the worker still can): the id of a connection like
    the worker's whose port refuses, so the poller's own SSH connect fails over the wire."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HPC_LSF_DOWN",
        json.dumps({**json.loads(hpc.connection_json()), "port": free_port()}),
    )
    monkeypatch.setattr(poller, "MAX_FAILURES", 2)
    monkeypatch.setattr(poller, "MAX_BACKOFF", 0.01)
    return "hpc_lsf_down"


@pytest.mark.integration
@pytest.mark.parametrize(("sleep", "finished"), [(0, True), (30, False)])
def test_when_polling_keeps_failing_the_task_looks_for_itself(
    lsf_quick, hpc_connection, unreachable_poller, sleep, finished
):
    run_id = f"unreachable-{sleep}"
    op, ctx = (
        operator(hpc_connection, plan_job("manifest-unreachable", sleep=sleep)),
        context(run_id),
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    trigger = deferred.value.trigger
    job_id = trigger.job_id
    seen_by_the_triggerer = LsfJobTrigger(
        unreachable_poller, job_id, trigger.job_name, trigger.directory, trigger.poll_interval
    )
    event = asyncio.run(first_event(seen_by_the_triggerer))
    assert event["outcome"] == "error"
    assert "LSF poll failed 2 times" in event["message"]
    assert "127.0.0.1" in event["message"]  # the reason the triggerer's connect gave

    if finished:
        wait_for(lsf_quick, job_id, {"DONE"})
        assert op.execute_complete(ctx, event)["succeeded"] == 1
    else:
        with pytest.raises(TaskDeferred) as again:  # still running: back to waiting
            op.execute_complete(ctx, event)
        assert again.value.trigger.job_id == job_id
        lsf_quick.run(["bkill", job_id])
