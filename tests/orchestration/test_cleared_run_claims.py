"""A task cleared in a run that had ended must not archive beside a run started meanwhile.

``check_submission`` claims the submission once per run. A wrangler who clears a failed task
(``request_archive``, a file job, ``complete_submission``) resumes the run without passing it
again; if another run for the submission was started while the first had failed, both would
ask the archiver, upload (on different runners, the same files at once) and complete.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.definitions.mappedoperator import MappedOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow.utils.state import DagRunState

from hca_archive.orchestration import run_claims
from hca_archive.orchestration.archive_dag import build_archive_dag
from hca_archive.orchestration.step_record import STEP_XCOM_KEY
from tests.sweep.test_sweep_rules import RunsTi

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
KEY = run_claims.claim_key("dev", UUID)
CLEARED = "manual__cleared"
# the steps that ask the archiver, upload or complete
CHANGING_STEPS = (
    "request_archive",
    "run_local",
    "run_lsf",
    "run_kubernetes",
    "complete_submission",
)


class StepTi(RunsTi):
    """Answers about runs and keeps the step records a task pushes."""

    dag_id = "archive_submission"
    task_id = "a_step"
    try_number = 1
    max_tries = 4

    def __init__(self, runs: dict[str, DagRunState]) -> None:
        super().__init__(runs)
        self.pushed: list[dict[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        assert key == STEP_XCOM_KEY
        self.pushed.append(value)


@pytest.fixture
def variables(airflow_variables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setattr(run_claims, "CLAIM_SETTLE_SECONDS", 0)
    return airflow_variables


def before_execute(task_id: str) -> Any:
    """What the DAG runs before the step's own work (its ``pre_execute`` hook)."""
    task = build_archive_dag().get_task(task_id)
    if isinstance(task, MappedOperator):
        return task.partial_kwargs.get("pre_execute")
    return task._pre_execute_hook


def context(ti: StepTi, dry_run: bool = False) -> dict[str, Any]:
    params = {"environment": "dev", "submission_uuid": UUID, "dry_run": dry_run}
    return {"params": params, "run_id": CLEARED, "ti": ti}


@pytest.mark.parametrize("task_id", CHANGING_STEPS)
def test_a_cleared_step_stops_while_another_run_is_at_work_on_the_submission(
    variables: dict[str, str], task_id: str
) -> None:
    variables[KEY] = "by-hand"  # started while the cleared run had failed
    ti = StepTi({"by-hand": DagRunState.RUNNING, CLEARED: DagRunState.RUNNING})
    hook = before_execute(task_id)
    assert hook is not None, f"{task_id} changes things without looking at the claim"
    with pytest.raises(AirflowFailException, match="run by-hand is archiving"):
        hook(context(ti))
    assert variables[KEY] == "by-hand"
    assert [record["state"] for record in ti.pushed] == ["failed"]  # the report says why


@pytest.mark.parametrize("task_id", CHANGING_STEPS)
@pytest.mark.parametrize("claimant", [None, "by-hand"])
def test_a_cleared_step_takes_the_claim_back_when_no_other_run_is_at_work(
    variables: dict[str, str], task_id: str, claimant: str | None
) -> None:
    """Then the cleared run is the one at work: a run started now must leave it the submission."""
    if claimant:
        variables[KEY] = claimant
    ti = StepTi({"by-hand": DagRunState.FAILED, CLEARED: DagRunState.RUNNING})
    before_execute(task_id)(context(ti))
    assert variables[KEY] == CLEARED
    assert ti.pushed == []  # the step's own record comes from the step
    later = {"params": context(ti)["params"], "run_id": "manual__later", "ti": ti}
    assert run_claims.claim(later) == CLEARED


def test_a_run_holding_its_claim_goes_on_without_writing_it_again(
    variables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    variables[KEY] = CLEARED
    monkeypatch.setattr(run_claims, "claim", lambda context: pytest.fail("claimed again"))
    ti = StepTi({CLEARED: DagRunState.RUNNING})
    for task_id in CHANGING_STEPS:
        before_execute(task_id)(context(ti))
    assert variables[KEY] == CLEARED


def test_a_dry_run_claims_nothing(variables: dict[str, str]) -> None:
    variables[KEY] = "by-hand"
    ti = StepTi({"by-hand": DagRunState.RUNNING, CLEARED: DagRunState.RUNNING})
    before_execute("request_archive")(context(ti, dry_run=True))  # it reads, and asks nothing
    assert variables[KEY] == "by-hand"
