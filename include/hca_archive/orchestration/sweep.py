"""The scheduled sweep: one ``archive_submission`` run per ingest submission waiting in Archiving.

One sweep DAG per environment (``archive_sweep_<environment>``). Each run lists every envelope in
state Archiving and triggers ``archive_submission`` for it under a deterministic run id,
``sweep__<environment>__<submission uuid>``. The rule, per submission:

- no run with that id yet: trigger one, once the envelope has been unchanged for a while
  (``HCA_ARCHIVE_SWEEP_MIN_AGE_MINUTES``, default 30): a wrangler who starts a run by hand as the
  submission reaches Archiving gets there first, instead of racing a sweep run (two runs could
  each ask the archiver, making two DSP submissions);
- a queued or running run: skip (it is at work); a run a wrangler started by hand, found by the
  claim it makes on the submission (``run_claims``), counts too;
- a successful run: skip (archived); but a successful sweep run of a submission still in
  Archiving (a dry run, or one that left the submission to a run by hand) is no proof: the run by
  hand stands for it while it exists, and otherwise the sweep says to clear its own run;
- a failed run: skip and say so. A wrangler fixes the cause and clears the run, which reruns it
  under the same id; retrying on its own every sweep would repeat the failure (and its
  notification) every few minutes. A run started by hand that succeeded or failed counts as the
  sweep's own would; once that run is deleted, a sweep starts one (unless its own run succeeded,
  see above).

Two sweeps racing for one submission cannot start two runs either: the run id is unique, and the
trigger task of the loser is skipped (``skip_when_already_exists``).

The schedule comes from ``HCA_ARCHIVE_SWEEP_SCHEDULE_<ENVIRONMENT>`` or else
``HCA_ARCHIVE_SWEEP_SCHEDULE`` (a cron expression; ``none`` to trigger only by hand), read when
the DAG file is parsed (a bad value fails the DAG file, naming the variable); default every 15
minutes. Extra ``archive_submission`` parameters for the runs a sweep starts
(``{"runner": "lsf"}``, say) come from the Airflow Variable
``hca_archive_sweep_<environment>_params`` (JSON), read when the sweep runs and checked against
``archive_submission``'s parameters: a bad one fails the sweep at once, naming it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, task

from hca_archive.archiving import plain_duration
from hca_archive.orchestration import run_claims
from hca_archive.orchestration.connections import ENVIRONMENTS
from hca_archive.orchestration.env_durations import env_duration

log = logging.getLogger(__name__)

ARCHIVE_DAG_ID = "archive_submission"
DEFAULT_SCHEDULE = "*/15 * * * *"
SCHEDULE_ENV = "HCA_ARCHIVE_SWEEP_SCHEDULE"
NO_SCHEDULE = {"", "none", "off"}
# Airflow's own names for a cron schedule, resolved by its timetables.
CRON_PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
ACTIVE_AT_CREATION = {"sandbox"}
RESERVED_PARAMS = {"submission_uuid", "environment"}
MIN_AGE_ENV = "HCA_ARCHIVE_SWEEP_MIN_AGE_MINUTES"
DEFAULT_MIN_AGE = timedelta(minutes=30)
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def sweep_dag_id(environment: str) -> str:
    return f"archive_sweep_{environment}"


def sweep_run_id(environment: str, submission_uuid: str) -> str:
    """The one run id a sweep gives the archiving run of a submission."""
    return f"sweep__{environment}__{submission_uuid}"


def sweep_schedule(environment: str, environ: dict[str, str] | None = None) -> str | None:
    """The cron schedule of the environment's sweep, or None when it runs only when triggered.

    A bad value raises here, naming the variable and its value: left to Airflow, the DAG file's
    import error gave only croniter's words ("Exactly 5, 6 or 7 columns ..."), and a date that
    never comes (``0 0 30 2 *``) or ``@once`` parsed without a word and the sweep never ran again.
    """
    environ = os.environ if environ is None else environ
    variable = f"{SCHEDULE_ENV}_{environment.upper()}"
    if variable not in environ:
        variable = SCHEDULE_ENV
    value = environ.get(variable)
    if value is None:
        return DEFAULT_SCHEDULE
    schedule = value.strip()
    if schedule.lower() in NO_SCHEDULE:
        return None
    problem = cron_problem(schedule)
    if problem:
        raise ValueError(
            f"{variable}={value!r}: {problem}; expected a cron expression (minute hour "
            f"day-of-month month day-of-week, as {DEFAULT_SCHEDULE!r}), a preset "
            f"({', '.join(CRON_PRESETS)}), or none, off or empty to trigger the sweep only by hand"
        )
    return schedule


def cron_problem(expression: str) -> str | None:
    """Why Airflow would refuse the sweep's cron expression, or never run it; None when fine.

    Airflow's own check (the timetable's ``validate``) decides what parses; a sweep must also
    come round again, which ``@once``, ``@continuous`` (a sweep after sweep, all day) and a date
    that does not exist do not.
    """
    from airflow.sdk import CronTriggerTimetable
    from airflow.sdk.exceptions import AirflowTimetableInvalid
    from croniter import CroniterBadDateError, croniter

    if expression in {"@once", "@continuous"}:
        return f"a sweep must run on a cron schedule, not {expression[1:]}"
    timetable = CronTriggerTimetable(expression, timezone="UTC")
    try:
        timetable.validate()
        croniter(timetable.expression).get_next(datetime)
    except AirflowTimetableInvalid as error:
        return f"not a cron expression ({error})"
    except CroniterBadDateError:
        return "it names a date that never comes"
    return None


@dataclass(frozen=True)
class SweepDecision:
    submission_uuid: str
    run_id: str
    trigger: bool
    reason: str


def sweep_min_age(environ: dict[str, str] | None = None) -> timedelta:
    """How long an envelope must have been unchanged before a sweep starts its run."""
    return env_duration(MIN_AGE_ENV, DEFAULT_MIN_AGE, "minutes", environ)


@dataclass(frozen=True)
class Waiting:
    """An envelope in Archiving: its uuid and when it last changed (None when ingest won't say)."""

    submission_uuid: str
    since: datetime | None


def waiting(envelope: Any) -> Waiting:
    """From an ingest ``Envelope``; an unreadable date counts as long ago."""
    stamp = envelope.update_date or envelope.submission_date
    try:
        since = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        since = None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return Waiting(envelope.uuid, since)


def decide(
    environment: str,
    submissions: Iterable[Waiting],
    state_of: Callable[[str], str | None],
    now: datetime,
    min_age: timedelta,
    claimant_of: Callable[[str], str | None],
) -> list[SweepDecision]:
    """What to do with each submission in Archiving; ``state_of(run_id)`` is None for no run,
    ``claimant_of(submission_uuid)`` the run that claimed the submission (run_claims), if any."""
    decisions = []
    seen = set()
    for submission in submissions:
        submission_uuid = submission.submission_uuid
        if submission_uuid in seen:
            continue
        seen.add(submission_uuid)
        if not UUID_RE.fullmatch(submission_uuid):
            decisions.append(
                SweepDecision(submission_uuid, "", False, "ingest gave a malformed uuid")
            )
            continue
        run_id = sweep_run_id(environment, submission_uuid)
        # the run that stands for the submission: the sweep's own, else one started by hand
        shown, state = run_id, state_of(run_id)
        # A run that archives ends with the envelope Archived: a successful run of a submission
        # still in Archiving left it to another run (or was a dry run), so that run stands for it.
        # A failed own run gives way only to a run at work (the wrangler's, started instead of
        # clearing it): the log must not ask to clear the failed run while that one archives.
        own_success = state == "success"
        if (
            state not in run_claims.ACTIVE_STATES
            and (claimant := claimant_of(submission_uuid))
            and claimant != run_id
            and (claimant_state := state_of(claimant)) is not None
            and (state in (None, "success") or claimant_state in run_claims.ACTIVE_STATES)
        ):
            shown, state = claimant, claimant_state
        if state is None and submission.since and now - submission.since < min_age:
            reason, trigger = (
                f"in Archiving since {submission.since:%Y-%m-%d %H:%M} UTC: "
                f"a sweep waits {plain_duration(min_age)} for a run started by hand",
                False,
            )
        elif state is None:
            reason, trigger = "no run yet", True
        elif state in run_claims.ACTIVE_STATES:
            reason, trigger = f"run {shown} is {state}", False
        elif state == "success" and own_success and shown == run_id:
            reason, trigger = (
                f"run {run_id} succeeded but the submission is still in Archiving (a dry run, "
                f"or it left the submission to a run since deleted): clear run {run_id} to "
                "archive it",
                False,
            )
        elif state == "success":
            reason, trigger = f"run {shown} succeeded", False
        else:
            reason, trigger = (
                f"run {shown} is {state}: fix the cause, then clear that run to retry",
                False,
            )
        decisions.append(SweepDecision(submission_uuid, run_id, trigger, reason))
    return decisions


def run_params(environment: str, extra: Any) -> dict[str, Any]:
    """The conf of a sweep-started run: the submission's environment plus the Variable's extras,
    each checked against ``archive_submission``'s parameters, naming the Variable: a bad value
    would fail the trigger of every submission at every sweep, and a misspelt name would be
    dropped without a word."""
    # Imported here: the DAG, with its operators, loads only when a sweep runs, not at parse.
    from airflow.sdk.exceptions import ParamValidationError

    from hca_archive.orchestration.archive_dag import PARAMS, unknown_params

    variable = params_variable(environment)
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise ValueError(f"Variable {variable}: must be a JSON object, got {type(extra).__name__}")
    reserved = RESERVED_PARAMS & set(extra)
    if reserved:
        raise ValueError(f"Variable {variable}: must not set {', '.join(sorted(reserved))}")
    known = set(PARAMS) - RESERVED_PARAMS
    problems = unknown_params(extra, known)
    for name in sorted(set(extra) & set(known)):
        try:
            copy.deepcopy(PARAMS[name]).resolve(extra[name])
        except ParamValidationError as error:
            cause = error.args[0] if error.args else error
            problems.append(f"{name}: {getattr(cause, 'message', cause)}")
    if problems:
        raise ValueError(f"Variable {variable}: {'; '.join(problems)}")
    return {**extra, "environment": environment}


def params_variable(environment: str) -> str:
    return f"hca_archive_sweep_{environment}_params"


def sweep_params(environment: str) -> dict[str, Any]:
    """``run_params`` from the environment's Variable; a bad Variable fails the sweep at once
    (no retry: the same Variable fails the same way), before ingest is asked anything."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    variable = params_variable(environment)
    stored = Variable.get(variable, default=None)
    try:
        extra = None if stored is None else json.loads(stored)
    except ValueError as error:
        raise AirflowFailException(
            f"Variable {variable}: is not valid JSON ({error}); fix it, then clear this task"
        ) from None
    try:
        return run_params(environment, extra)
    except ValueError as error:
        raise AirflowFailException(f"{error}; fix it, then clear this task") from None


@task(
    task_id="find_submissions",
    retries=3,
    retry_delay=timedelta(seconds=30),
    retry_exponential_backoff=True,
)
def find_submissions(environment: str, **context: Any) -> list[dict[str, Any]]:
    """The trigger arguments of each Archiving submission that needs a run; logs the others."""
    from hca_archive.orchestration.hooks import HcaArchiveHook

    params = sweep_params(environment)
    min_age = sweep_min_age()
    archiving = [
        waiting(envelope) for envelope in HcaArchiveHook(environment).ingest.iter_envelopes()
    ]
    decisions = decide(
        environment,
        archiving,
        lambda run_id: run_claims.run_state(context["ti"], ARCHIVE_DAG_ID, run_id),
        datetime.now(UTC),
        min_age,
        lambda submission_uuid: run_claims.claiming_run(environment, submission_uuid),
    )
    triggered = [decision for decision in decisions if decision.trigger]
    log.info("%d submission(s) in Archiving in %s", len(decisions), environment)
    for decision in decisions:
        verb = "triggering" if decision.trigger else "skipping"
        log.info("%s %s: %s", verb, decision.submission_uuid, decision.reason)
    log.info("triggering %d, skipping %d", len(triggered), len(decisions) - len(triggered))
    return [
        {
            "trigger_run_id": decision.run_id,
            "conf": {**params, "submission_uuid": decision.submission_uuid},
        }
        for decision in triggered
    ]


def build_sweep_dag(environment: str) -> DAG:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    with DAG(
        dag_id=sweep_dag_id(environment),
        schedule=sweep_schedule(environment),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=environment not in ACTIVE_AT_CREATION,
        tags=["hca", "sweep", environment],
        doc_md=__doc__,
        default_args={"owner": "hca-wranglers"},
    ) as dag:
        TriggerDagRunOperator.partial(
            task_id="trigger_archive_submission",
            trigger_dag_id=ARCHIVE_DAG_ID,
            logical_date=None,
            skip_when_already_exists=True,
            fail_when_dag_is_paused=True,
            openlineage_inject_parent_info=False,
            map_index_template="{{ task.conf['submission_uuid'] }}",
        ).expand_kwargs(find_submissions(environment))
    return dag


def build_sweep_dags() -> dict[str, DAG]:
    return {sweep_dag_id(environment): build_sweep_dag(environment) for environment in ENVIRONMENTS}
