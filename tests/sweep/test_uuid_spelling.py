"""One submission typed two ways must not get two runs (and two DSP submissions).

Ingest's ``findByUuidUuid`` takes a java ``UUID`` (Spring trims the text, ``UUID.fromString``
ignores case), so ``2A0F...`` and ``2a0f...\\n`` find the same envelope as ``2a0f...``. Every
lock of the pipeline (the run claim the sweep respects, the archiver request marker) is keyed on
the text typed in the trigger form, so such a run is invisible to the sweep and to other runs.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk.exceptions import ParamValidationError
from airflow.utils.state import DagRunState

from hca_archive.orchestration import run_claims
from hca_archive.orchestration.archive_dag import build_archive_dag
from hca_archive.orchestration.request_operator import RequestMarker
from hca_archive.orchestration.sweep import Waiting, decide, sweep_run_id

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def dag_params():
    return build_archive_dag().params


def _validated(dag_params, **values):
    params = copy.deepcopy(dag_params)
    for key, value in values.items():
        params[key] = value
    return params.validate()


@pytest.mark.parametrize("typed", [UUID.upper(), UUID + "\n"])
def test_the_form_refuses_another_spelling_of_a_uuid(dag_params, typed: str) -> None:
    with pytest.raises(ParamValidationError):
        _validated(dag_params, submission_uuid=typed)


@pytest.mark.parametrize("values", [{"alias_prefix": "HCA\n"}, {"exclude_types": ["project\n"]}])
def test_the_form_refuses_a_trailing_line_break(dag_params, values: dict) -> None:
    """JSON Schema ``pattern`` is checked with ``re.search``: ``$`` matches before a final \\n."""
    with pytest.raises(ParamValidationError):
        _validated(dag_params, submission_uuid=UUID, **values)


class Variables(dict):
    def get(self, key, default=None):
        return super().get(key, default)

    def set(self, key, value):
        self[key] = value


@pytest.mark.parametrize("typed", [UUID.upper(), UUID + "\n"])
def test_a_run_typed_another_way_is_seen_by_the_sweep_and_by_other_runs(
    monkeypatch: pytest.MonkeyPatch, dag_params, typed: str
) -> None:
    """The end-to-end consequence: the wrangler's run is at work, yet the sweep starts its own,
    and that run claims the submission too and asks the archiver under another marker."""
    try:
        params = _validated(dag_params, submission_uuid=typed, environment="dev")
    except ParamValidationError:
        return  # the form refused it: no such run can exist
    import airflow.sdk

    variables = Variables()
    monkeypatch.setattr(airflow.sdk, "Variable", variables)
    monkeypatch.setattr(run_claims, "CLAIM_SETTLE_SECONDS", 0)
    by_hand = "manual__2026-11-29T10:00:00+00:00"
    states = {by_hand: DagRunState.RUNNING}

    class Ti:
        dag_id = "archive_submission"

        def get_dr_count(self, dag_id, run_ids):
            return sum(run_id in states for run_id in run_ids)

        def get_dagrun_state(self, dag_id, run_id):
            return states[run_id]

    assert run_claims.claim({"params": params, "run_id": by_hand, "ti": Ti()}) is None

    (decision,) = decide(
        "dev",
        [Waiting(UUID, NOW - timedelta(hours=2))],  # ingest lists the envelope's own uuid
        lambda run_id: run_claims.run_state(Ti(), "archive_submission", run_id),
        NOW,
        timedelta(minutes=30),
        lambda uuid: run_claims.claiming_run("dev", uuid),
    )
    assert not decision.trigger, f"the sweep starts a second run: {decision.reason}"

    sweep_run = sweep_run_id("dev", UUID)
    states[sweep_run] = DagRunState.RUNNING
    sweep_context = {"params": {"environment": "dev", "submission_uuid": UUID}, "run_id": sweep_run}
    assert run_claims.claim({**sweep_context, "ti": Ti()}) == by_hand
    assert RequestMarker("dev", params["submission_uuid"]).key == RequestMarker("dev", UUID).key
