"""A sweep run that "succeeded" without archiving must not hide the submission.

A sweep run succeeds without archiving when its ``check_submission`` left the submission to a
wrangler's run at work (the wrangler's run was still queued, without its claim, when the sweep
looked), or when the sweep's Variable made it a dry run. The submission is then still listed in
Archiving (a run that archives waits for the envelope to be Archived), yet every later sweep says
"run sweep__... succeeded" and never looks at the run that really holds the submission: its
failure is not shown, and once a wrangler deletes it (as the sweep's docstring advises) no run is
ever started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hca_archive.orchestration.sweep import Waiting, decide, sweep_run_id

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
BY_HAND = "manual__2026-11-29T10:00:00+00:00"
SWEEP_RUN = sweep_run_id("dev", UUID)


def decision(states: dict[str, str], claims: dict[str, str]):
    (only,) = decide(
        "dev",
        [Waiting(UUID, NOW - timedelta(hours=3))],  # still in Archiving
        states.get,
        NOW,
        timedelta(minutes=30),
        claims.get,
    )
    return only


def test_the_run_the_sweep_run_left_the_submission_to_is_the_one_shown() -> None:
    shown = decision({SWEEP_RUN: "success", BY_HAND: "failed"}, {UUID: BY_HAND})
    assert not shown.trigger
    assert shown.reason == f"run {BY_HAND} is failed: fix the cause, then clear that run to retry"


def test_a_successful_sweep_run_that_did_not_archive_says_what_to_do() -> None:
    """The wrangler's run was deleted (or the sweep run was a dry run): no run will ever come."""
    shown = decision({SWEEP_RUN: "success"}, {UUID: BY_HAND})
    assert not shown.trigger  # the run id is taken: a trigger would be skipped
    assert "still in Archiving" in shown.reason and f"clear run {SWEEP_RUN}" in shown.reason
