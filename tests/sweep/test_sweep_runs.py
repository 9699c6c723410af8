"""End to end: two sandbox sweeps, triggered over the REST API, archive each submission once."""

from __future__ import annotations

import pytest

from hca_archive.orchestration.run_claims import claim_key
from hca_archive.orchestration.sweep import sweep_run_id
from tests.fixtures.airflow import DAG_ID, RUN_TIMEOUT, AirflowStack
from tests.sandbox.helpers import wait_for
from tests.sweep.conftest import SWEEP, PrivateStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def sweep_stack(private_stack: PrivateStack) -> AirflowStack:
    return private_stack.airflow


def sweep(stack: AirflowStack) -> str:
    run_id = stack.api.trigger(SWEEP, {})
    assert stack.api.wait_for_run(SWEEP, run_id, 300)["state"] == "success"
    return run_id


def test_two_sweeps_start_exactly_one_run_per_archiving_submission(
    sweep_stack: AirflowStack,
) -> None:
    api = sweep_stack.api
    seeded = set(sweep_stack.sandbox.seed(count=3, jobs=["plain"], reads=50))
    first = sweep(sweep_stack)
    second = sweep(sweep_stack)

    runs = api.json("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]
    expected = {sweep_run_id("sandbox", uuid): uuid for uuid in seeded}
    assert {run["dag_run_id"] for run in runs} == set(expected)
    for run in runs:
        assert run["conf"]["submission_uuid"] == expected[run["dag_run_id"]]
        assert run["conf"]["environment"] == "sandbox"
        finished = api.wait_for_run(DAG_ID, run["dag_run_id"], RUN_TIMEOUT)
        assert finished["state"] == "success", run["dag_run_id"]
        # The audit record names the sweep through the run id.
        assert sweep_stack.audit_record(run["dag_run_id"])["run_id"].startswith("sweep__sandbox__")
    for uuid in seeded:
        assert sweep_stack.sandbox.submission_summary(uuid)["envelope_state"] == "Archived"

    triggers = api.task_instances(SWEEP, first)
    labels = {ti["rendered_map_index"] for ti in triggers if ti["task_id"] != "find_submissions"}
    assert labels == seeded
    assert api.xcom(SWEEP, second, "find_submissions") == []


def sweep_log(stack: AirflowStack, run_id: str) -> str:
    run_dir = stack.standalone.home / "logs" / f"dag_id={SWEEP}" / f"run_id={run_id}"
    return "\n".join(path.read_text() for path in run_dir.rglob("*.log"))


def test_a_submission_whose_run_succeeded_is_skipped_with_the_reason(
    sweep_stack: AirflowStack,
) -> None:
    """A dry run leaves the envelope in Archiving: the sweep must not start it again."""
    (uuid,) = sweep_stack.sandbox.seed(jobs=["plain"], reads=50)
    run_id = sweep_run_id("sandbox", uuid)
    sweep_stack.api.trigger(DAG_ID, {"submission_uuid": uuid, "dry_run": True}, run_id=run_id)
    assert sweep_stack.api.wait_for_run(DAG_ID, run_id, RUN_TIMEOUT)["state"] == "success"

    sweep_id = sweep(sweep_stack)
    assert sweep_stack.api.xcom(SWEEP, sweep_id, "find_submissions") == []
    assert f"skipping {uuid}: run {run_id} succeeded" in sweep_log(sweep_stack, sweep_id)
    assert sweep_stack.sandbox.submission_summary(uuid)["envelope_state"] == "Archiving"


def test_a_run_started_by_hand_and_still_at_work_is_left_to_itself(
    sweep_stack: AirflowStack,
) -> None:
    """A big submission's run outlasts the sweep's wait for wranglers: its claim keeps a sweep
    from starting a second run (on another runner, it would upload every file again)."""
    (uuid,) = sweep_stack.sandbox.seed(jobs=["plain"], reads=50)
    sweep_stack.sandbox.set_faults("archiver", latency=20)  # keeps the run at work meanwhile
    try:
        by_hand = sweep_stack.api.trigger(DAG_ID, {"submission_uuid": uuid})
        wait_for(
            "the run to claim the submission",
            lambda: sweep_stack.states(by_hand).get("check_submission") == ["success"],
            timeout=RUN_TIMEOUT,
        )
        sweep_id = sweep(sweep_stack)
        again, run = sweep_stack.archive(uuid)  # a second wrangler, unaware of the first
    finally:
        sweep_stack.sandbox.clear_faults()
    assert sweep_stack.api.xcom(SWEEP, sweep_id, "find_submissions") == []
    assert f"skipping {uuid}: run {by_hand} is running" in sweep_log(sweep_stack, sweep_id)
    assert run["state"] == "success"
    assert sweep_stack.states(again)["check_submission"] == ["skipped"]
    assert f"run {by_hand} is archiving it; this run leaves it to that one" in (
        sweep_stack.task_log(again, "check_submission")
    )
    assert sweep_stack.api.wait_for_run(DAG_ID, by_hand, RUN_TIMEOUT)["state"] == "success"
    claim = sweep_stack.api.request("GET", f"/variables/{claim_key('sandbox', uuid)}")
    assert claim.status_code == 404, claim.text  # released when the run reported
