"""Which ``archive_submission`` run is archiving a submission: a claim the sweep respects.

A wrangler's run has a run id of Airflow's making, which the sweep cannot find by submission.
Each run therefore names itself in the Airflow Variable ``hca_archive_run_<env>_<uuid>`` once it
has checked the submission, and removes that claim when it reports. The sweep skips a submission
whose claiming run is still queued or running; a claim left by a run that died is just stale.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def claim_key(environment: str, submission_uuid: str) -> str:
    return f"hca_archive_run_{environment}_{submission_uuid}"


def claim(context: Any) -> None:
    from airflow.sdk import Variable

    params = context["params"]
    Variable.set(claim_key(params["environment"], params["submission_uuid"]), context["run_id"])


def release(context: Any) -> None:
    """Remove this run's claim (not a claim a later run made meanwhile). A claim that cannot be
    removed is only logged: once the run has ended, the sweep ignores it anyway."""
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
