"""The sweep's rules: which Archiving submissions get a run, and how its DAGs are set up."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import ClassVar

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.utils.state import DagRunState

from hca_archive.orchestration import run_claims
from hca_archive.orchestration.run_claims import run_state
from hca_archive.orchestration.sweep import (
    DEFAULT_SCHEDULE,
    SweepDecision,
    Waiting,
    build_sweep_dags,
    decide,
    run_params,
    sweep_min_age,
    sweep_run_id,
    sweep_schedule,
    waiting,
)

FIRST = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
SECOND = "7c3e1f52-0b8a-4d6e-9f21-5a4b3c2d1e0f"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
AN_HOUR_AGO = NOW - timedelta(hours=1)


def sweep(
    run_states: dict[str, str],
    *uuids: str,
    since: datetime | None = AN_HOUR_AGO,
    claims: dict[str, str] | None = None,
) -> list[SweepDecision]:
    submissions = [Waiting(uuid, since) for uuid in uuids]
    claimant = (claims or {}).get
    return decide("dev", submissions, run_states.get, NOW, timedelta(minutes=30), claimant)


def decisions_for(run_states: dict[str, str], *uuids: str) -> dict[str, tuple[bool, str]]:
    return {d.submission_uuid: (d.trigger, d.reason) for d in sweep(run_states, *uuids)}


def test_a_submission_without_a_run_is_triggered_under_its_own_run_id() -> None:
    (decision,) = sweep({}, FIRST)
    assert decision.trigger
    assert decision.run_id == f"sweep__dev__{FIRST}"
    assert decision.reason == "no run yet"


def test_a_submission_just_moved_to_archiving_is_left_to_a_wrangler_for_a_while() -> None:
    (fresh,) = sweep({}, FIRST, since=NOW - timedelta(minutes=29))
    assert not fresh.trigger
    assert fresh.reason == (
        "in Archiving since 2026-11-29 11:31 UTC: a sweep waits 30 min for a run started by hand"
    )
    (undated,) = sweep({}, FIRST, since=None)
    assert undated.trigger


@pytest.mark.parametrize("state", ["queued", "running"])
def test_an_active_run_is_left_alone(state: str) -> None:
    trigger, reason = decisions_for({sweep_run_id("dev", FIRST): state}, FIRST)[FIRST]
    assert not trigger
    assert reason == f"run sweep__dev__{FIRST} is {state}"


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_run_started_by_hand_and_still_at_work_is_left_alone(state: str) -> None:
    """Even after the wait for a wrangler: a big submission's run outlasts it."""
    by_hand = "manual__2026-11-29T10:00:00+00:00"
    (decision,) = sweep({by_hand: state}, FIRST, claims={FIRST: by_hand})
    assert not decision.trigger
    assert decision.reason == f"run {by_hand} is {state}"


def test_the_claim_of_a_deleted_run_is_ignored() -> None:
    by_hand = "manual__2026-11-29T10:00:00+00:00"
    (decision,) = sweep({}, FIRST, claims={FIRST: by_hand})
    assert decision.trigger
    assert decision.reason == "no run yet"


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("success", "succeeded"),
        ("failed", "is failed: fix the cause, then clear that run to retry"),
    ],
)
def test_a_run_started_by_hand_that_ended_counts_as_the_sweeps_own(state: str, reason: str) -> None:
    """A wrangler's failed run is not repeated behind the wrangler's back, with a second
    failure notice; it waits to be cleared, as a failed sweep run does."""
    by_hand = "manual__2026-11-29T10:00:00+00:00"
    (decision,) = sweep({by_hand: state}, FIRST, claims={FIRST: by_hand})
    assert not decision.trigger
    assert decision.reason == f"run {by_hand} {reason}"


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_failed_sweep_run_behind_a_run_started_by_hand_at_work_names_that_run(
    state: str,
) -> None:
    """The wrangler started a run instead of clearing the sweep's: the log must not tell them to
    fix and clear the failed one while theirs is archiving."""
    by_hand = "manual__2026-11-29T10:00:00+00:00"
    states = {sweep_run_id("dev", FIRST): "failed", by_hand: state}
    (decision,) = sweep(states, FIRST, claims={FIRST: by_hand})
    assert not decision.trigger
    assert decision.reason == f"run {by_hand} is {state}"


def test_a_successful_run_is_not_repeated() -> None:
    trigger, reason = decisions_for({sweep_run_id("dev", FIRST): "success"}, FIRST)[FIRST]
    assert not trigger
    assert "succeeded" in reason


def test_a_failed_run_waits_for_a_wrangler() -> None:
    trigger, reason = decisions_for({sweep_run_id("dev", FIRST): "failed"}, FIRST)[FIRST]
    assert not trigger
    assert "is failed: fix the cause, then clear that run" in reason


def test_each_submission_is_decided_once_and_on_its_own_run() -> None:
    decided = sweep({sweep_run_id("dev", SECOND): "running"}, FIRST, SECOND, FIRST)
    assert [(d.submission_uuid, d.trigger) for d in decided] == [(FIRST, True), (SECOND, False)]


@pytest.mark.parametrize("bad", ["not-a-uuid", f"{FIRST}/../x", f"{FIRST} {{{{ 7*7 }}}}"])
def test_a_malformed_uuid_from_ingest_is_skipped_without_asking_for_runs(bad: str) -> None:
    def no_lookup(run_id: str) -> None:
        raise AssertionError(f"looked up {run_id}")

    (decision,) = decide("dev", [Waiting(bad, None)], no_lookup, NOW, timedelta(0), no_lookup)
    assert not decision.trigger
    assert decision.reason == "ingest gave a malformed uuid"


def test_an_envelope_waits_from_its_last_change_as_ingest_dates_it() -> None:
    envelope = SimpleNamespace(
        uuid=FIRST, update_date="2026-11-29T11:31:02.123Z", submission_date="2026-11-01T00:00:00Z"
    )
    assert waiting(envelope).since == datetime(2026, 11, 29, 11, 31, 2, 123000, tzinfo=UTC)
    envelope.update_date = None
    assert waiting(envelope).since == datetime(2026, 11, 1, tzinfo=UTC)
    envelope.submission_date = "last Tuesday"
    assert waiting(envelope).since is None


def test_the_wait_is_configurable_in_minutes() -> None:
    assert sweep_min_age({}) == timedelta(minutes=30)
    assert sweep_min_age({"HCA_ARCHIVE_SWEEP_MIN_AGE_MINUTES": "0"}) == timedelta(0)
    for bad in ("soon", "-5", "nan"):
        with pytest.raises(ValueError, match="HCA_ARCHIVE_SWEEP_MIN_AGE_MINUTES must be a number"):
            sweep_min_age({"HCA_ARCHIVE_SWEEP_MIN_AGE_MINUTES": bad})


def test_the_schedule_defaults_to_every_quarter_hour() -> None:
    assert sweep_schedule("dev", {}) == DEFAULT_SCHEDULE == "*/15 * * * *"


def test_the_schedule_is_set_per_environment_or_for_all() -> None:
    environ = {"HCA_ARCHIVE_SWEEP_SCHEDULE": "0 * * * *", "HCA_ARCHIVE_SWEEP_SCHEDULE_PROD": "none"}
    assert sweep_schedule("dev", environ) == "0 * * * *"
    assert sweep_schedule("prod", environ) is None
    assert sweep_schedule("sandbox", {"HCA_ARCHIVE_SWEEP_SCHEDULE": " Off "}) is None


def test_an_empty_schedule_for_one_environment_stops_its_sweep_whatever_the_others_have() -> None:
    environ = {"HCA_ARCHIVE_SWEEP_SCHEDULE": "0 * * * *", "HCA_ARCHIVE_SWEEP_SCHEDULE_PROD": ""}
    assert sweep_schedule("prod", environ) is None


@pytest.mark.parametrize("schedule", ["@hourly", "0 6 * * 1-5", "*/5 * * * *", "0 0 * * * *"])
def test_the_schedule_takes_what_airflow_takes(schedule: str) -> None:
    assert sweep_schedule("dev", {"HCA_ARCHIVE_SWEEP_SCHEDULE": f" {schedule} "}) == schedule


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("every hour", "not a cron expression (Exactly 5, 6 or 7 columns"),
        ("61 * * * *", "not a cron expression ([61 * * * *] is not acceptable, out of range)"),
        ("0 0 30 2 *", "it names a date that never comes"),
        ("@once", "a sweep must run on a cron schedule, not once"),
        ("@continuous", "a sweep must run on a cron schedule, not continuous"),
    ],
)
def test_a_bad_schedule_names_the_variable_its_value_and_what_is_accepted(
    schedule: str, problem: str
) -> None:
    """Airflow's import error said only croniter's words; a date that never comes and ``@once``
    parsed and the sweep never ran (again)."""
    environ = {
        "HCA_ARCHIVE_SWEEP_SCHEDULE": "0 * * * *",
        "HCA_ARCHIVE_SWEEP_SCHEDULE_DEV": schedule,
    }
    with pytest.raises(ValueError) as error:
        sweep_schedule("dev", environ)
    message = str(error.value)
    assert message.startswith(f"HCA_ARCHIVE_SWEEP_SCHEDULE_DEV={schedule!r}: {problem}")
    assert "expected a cron expression (minute hour day-of-month month day-of-week" in message
    assert "@hourly" in message and "none, off or empty" in message
    with pytest.raises(ValueError, match=r"^HCA_ARCHIVE_SWEEP_SCHEDULE='every hour': "):
        sweep_schedule("prod", {"HCA_ARCHIVE_SWEEP_SCHEDULE": "every hour"})


def test_run_params_name_the_environment_and_keep_the_variable_extras() -> None:
    assert run_params("prod", None) == {"environment": "prod"}
    assert run_params("prod", {"runner": "lsf"}) == {"runner": "lsf", "environment": "prod"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["lsf"], "must be a JSON object, got list"),
        ({"environment": "sandbox"}, "must not set environment"),
        ({"submission_uuid": FIRST}, "must not set submission_uuid"),
    ],
)
def test_run_params_refuse_a_bad_variable(extra: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        run_params("prod", extra)
    assert "hca_archive_sweep_prod_params" in str(error.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"runner": "lsff"}, "runner: 'lsff' is not one of"),
        ({"dry_run": "yes"}, "dry_run: 'yes' is not of type 'boolean'"),
        ({"alias_prefix": "HCA prefix"}, "alias_prefix: 'HCA prefix' does not match"),
        ({"runer": "lsf"}, "unknown parameter runer; known: alias_prefix, dry_run"),
    ],
)
def test_run_params_refuse_values_every_run_would_refuse(extra: object, message: str) -> None:
    """A bad value would fail the trigger of every submission, every sweep, without naming the
    Variable; a misspelt name would be dropped silently (runs on the default runner)."""
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        run_params("prod", extra)
    assert str(error.value).startswith("Variable hca_archive_sweep_prod_params: ")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ('{"runner": "lsf",}', "is not valid JSON"),
        ('{"runner": "lsff"}', "runner: 'lsff' is not one of"),
    ],
)
def test_a_bad_params_variable_fails_the_sweep_at_once_naming_it(
    monkeypatch: pytest.MonkeyPatch, stored: str, message: str
) -> None:
    """Not retried (the same Variable would fail again) and before ingest is asked anything."""
    import airflow.sdk

    class Variable:
        @staticmethod
        def get(key: str, default: object = None, deserialize_json: bool = False) -> object:
            assert key == "hca_archive_sweep_dev_params"
            return json.loads(stored) if deserialize_json else stored

    monkeypatch.setattr(airflow.sdk, "Variable", Variable)
    find = build_sweep_dags()["archive_sweep_dev"].get_task("find_submissions")
    with pytest.raises(AirflowFailException, match=re.escape(message)) as error:
        find.python_callable("dev", ti=None)
    assert "Variable hca_archive_sweep_dev_params" in str(error.value)


def test_one_sweep_per_environment_paused_except_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HCA_ARCHIVE_SWEEP_SCHEDULE", raising=False)
    dags = build_sweep_dags()
    assert set(dags) == {f"archive_sweep_{env}" for env in ("sandbox", "dev", "staging", "prod")}
    assert {dag_id: dag.is_paused_upon_creation for dag_id, dag in dags.items()} == {
        "archive_sweep_sandbox": False,
        "archive_sweep_dev": True,
        "archive_sweep_staging": True,
        "archive_sweep_prod": True,
    }
    for dag in dags.values():
        assert dag.max_active_runs == 1
        assert not dag.catchup


def test_sweep_triggers_are_mapped_labelled_and_never_duplicate_a_run() -> None:
    trigger = build_sweep_dags()["archive_sweep_dev"].get_task("trigger_archive_submission")
    assert trigger.map_index_template == "{{ task.conf['submission_uuid'] }}"
    kwargs = trigger.partial_kwargs
    assert kwargs["trigger_dag_id"] == "archive_submission"
    assert kwargs["skip_when_already_exists"] is True
    assert kwargs["fail_when_dag_is_paused"] is True


class RunsTi:
    """Answers the Task SDK's questions about ``archive_submission`` runs."""

    def __init__(self, runs: dict[str, DagRunState]) -> None:
        self.runs = runs

    def get_dr_count(self, dag_id: str, run_ids: list[str]) -> int:
        assert dag_id == "archive_submission"
        return sum(run_id in self.runs for run_id in run_ids)

    def get_dagrun_state(self, dag_id: str, run_id: str) -> DagRunState:
        return self.runs[run_id]


def test_run_states_are_plain_words_and_none_without_a_run() -> None:
    ti = RunsTi({"sweep__dev__x": DagRunState.RUNNING})
    assert run_state(ti, "archive_submission", "sweep__dev__x") == "running"
    assert run_state(ti, "archive_submission", "sweep__dev__y") is None


def test_listing_the_submissions_retries_with_backoff() -> None:
    find = build_sweep_dags()["archive_sweep_prod"].get_task("find_submissions")
    assert find.retries >= 2
    assert find.retry_exponential_backoff


@pytest.mark.parametrize(
    ("claimant", "state", "expected"),
    [
        (None, None, None),  # nobody claimed the submission
        ("this-run", DagRunState.RUNNING, None),  # our own claim, from an earlier try
        ("by-hand", DagRunState.RUNNING, "by-hand"),
        ("by-hand", DagRunState.QUEUED, "by-hand"),
        ("by-hand", DagRunState.FAILED, None),  # a stale claim
        ("by-hand", DagRunState.SUCCESS, None),
    ],
)
def test_a_run_leaves_its_submission_to_another_run_at_work(
    monkeypatch: pytest.MonkeyPatch, claimant: str | None, state: DagRunState | None, expected
) -> None:
    monkeypatch.setattr(run_claims, "claiming_run", lambda environment, uuid: claimant)
    ti = RunsTi({claimant: state} if claimant and state else {})
    ti.dag_id = "archive_submission"
    context = {
        "params": {"environment": "dev", "submission_uuid": FIRST},
        "run_id": "this-run",
        "ti": ti,
    }
    assert run_claims.other_run_at_work(context) == expected


class VariableStore:
    """Airflow's Variable API over a dict; both runs must have looked before either writes."""

    values: ClassVar[dict[str, str]] = {}
    both_looked = threading.Barrier(2, timeout=5)

    @classmethod
    def get(cls, key: str, default: str | None = None) -> str | None:
        return cls.values.get(key, default)

    @classmethod
    def set(cls, key: str, value: str) -> None:
        cls.both_looked.wait()
        cls.values[key] = value


def test_of_two_runs_claiming_at_once_exactly_one_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow.sdk

    monkeypatch.setattr(airflow.sdk, "Variable", VariableStore)
    monkeypatch.setattr(VariableStore, "values", {})
    monkeypatch.setattr(run_claims, "CLAIM_SETTLE_SECONDS", 0.3)
    ti = RunsTi({"run-a": DagRunState.RUNNING, "run-b": DagRunState.RUNNING})
    ti.dag_id = "archive_submission"
    params = {"environment": "dev", "submission_uuid": FIRST}
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda run_id: run_claims.claim({"params": params, "run_id": run_id, "ti": ti}),
                ["run-a", "run-b"],
            )
        )
    winner = VariableStore.values[run_claims.claim_key("dev", FIRST)]
    assert sorted(answers, key=str) == sorted([None, winner], key=str)


def test_a_run_finding_the_submission_claimed_by_a_run_at_work_leaves_the_claim_alone(
    monkeypatch: pytest.MonkeyPatch, airflow_variables: dict[str, str]
) -> None:
    """claim() must look before it writes: a run that overwrote the claim of a run at work would
    read its own id back after the settle and go on, and both runs would archive."""
    values = airflow_variables
    values[run_claims.claim_key("dev", FIRST)] = "by-hand"
    monkeypatch.setattr(run_claims, "CLAIM_SETTLE_SECONDS", 0)
    ti = RunsTi({"by-hand": DagRunState.RUNNING, "sweep-run": DagRunState.RUNNING})
    ti.dag_id = "archive_submission"
    params = {"environment": "dev", "submission_uuid": FIRST}

    assert run_claims.claim({"params": params, "run_id": "sweep-run", "ti": ti}) == "by-hand"
    assert values == {run_claims.claim_key("dev", FIRST): "by-hand"}
