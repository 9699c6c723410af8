"""Which ``archive_submission`` run is archiving a submission: a claim the sweep respects.

A wrangler's run has a run id of Airflow's making, which the sweep cannot find by submission.
Each run therefore names itself in the Airflow Variable ``hca_archive_run_<env>_<uuid>`` once it
has checked the submission. While the claiming run is queued or running, the sweep skips the
submission and a run started meanwhile leaves it to that run (on another runner it would upload
every file again). To a new run, a claim of a run that ended counts for nothing; the sweep
treats the claiming run as its own (a failed one waits for a wrangler). A claim is removed only
when the run succeeds, so that a failed run a wrangler clears and resumes still holds it.

A task cleared in a run that had ended resumes without passing ``check_submission``, and a run
may have claimed the submission meanwhile: every step that changes something ``hold``s the claim
first, so two runs never archive one submission side by side.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

ACTIVE_STATES = {"queued", "running"}
CLAIM_SETTLE_SECONDS = 2.0


def claim_key(environment: str, submission_uuid: str) -> str:
    return f"hca_archive_run_{environment}_{submission_uuid}"


def claim(context: Any) -> str | None:
    """Claim this run's submission, unless another run at work holds it: then return its id.

    A Variable has no compare-and-set, and two runs may check in the same instant. Each writes
    its run id, waits for writes to settle and reads the claim back: only one id stays, and the
    run whose id did not leaves the submission to the other.
    """
    from airflow.sdk import Variable

    if other := other_run_at_work(context):
        return other
    params = context["params"]
    Variable.set(claim_key(params["environment"], params["submission_uuid"]), context["run_id"])
    time.sleep(CLAIM_SETTLE_SECONDS)
    return other_run_at_work(context)


def hold(context: Any) -> str | None:
    """Before a step that asks the archiver, uploads or completes: None once this run holds the
    claim, else the id of another run at work that holds it (this run must leave it alone).

    A run holds its claim from ``check_submission`` on, and then this only reads it. A run
    resumed by clearing one of its tasks after it had ended may have lost it to a run started
    meanwhile: it takes the claim back, as ``claim`` does, unless that run is still at work.
    """
    params = context["params"]
    if claiming_run(params["environment"], params["submission_uuid"]) == context["run_id"]:
        return None
    return claim(context)


def release(context: Any) -> None:
    """Remove this run's claim (not a claim a later run made meanwhile), once it succeeded. A
    claim that cannot be removed is only logged: the run has ended, so it counts for nothing."""
    from airflow.sdk import Variable

    params = context["params"]
    key = claim_key(params["environment"], params["submission_uuid"])
    try:
        if Variable.get(key, default=None) == context["run_id"]:
            Variable.delete(key)
    except Exception as error:  # the report matters more than a stale claim
        log.warning("could not remove the claim %s: %s", key, error)


def claiming_run(environment: str, submission_uuid: str) -> str | None:
    """The id of the run that last claimed the submission, if any."""
    from airflow.sdk import Variable

    return Variable.get(claim_key(environment, submission_uuid), default=None)


def run_state(ti: Any, dag_id: str, run_id: str) -> str | None:
    """The state of run ``run_id`` of ``dag_id`` ("running" ...), None if there is none."""
    if not ti.get_dr_count(dag_id=dag_id, run_ids=[run_id]):
        return None
    state = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    return str(getattr(state, "value", state))  # DagRunState.RUNNING -> "running"


def other_run_at_work(context: Any) -> str | None:
    """Another run of this DAG that claimed this run's submission and is queued or running."""
    params, ti = context["params"], context["ti"]
    claimant = claiming_run(params["environment"], params["submission_uuid"])
    if claimant is None or claimant == context["run_id"]:
        return None
    return claimant if run_state(ti, ti.dag_id, claimant) in ACTIVE_STATES else None
