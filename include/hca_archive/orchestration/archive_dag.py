"""The ``archive_submission`` DAG: one parameterised run archives one ingest submission.

Steps: check the envelope -> ask the archiver and wait for the DSP submission (asking again only
when nothing came of the last request, at most three times) -> wait for metadata validation ->
fetch the upload plan -> one mapped file job per plan job, on the chosen runner -> wait for
validation and blockers -> complete -> wait for accessions -> report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from hca_archive import archiving
from hca_archive.orchestration import run_claims
from hca_archive.orchestration.connections import ENVIRONMENTS, RUNNERS
from hca_archive.orchestration.env_durations import env_duration
from hca_archive.orchestration.file_job_results import FILE_JOB_TIME_LIMIT
from hca_archive.orchestration.lsf.operator import LsfFileJobOperator
from hca_archive.orchestration.notifications import run_notifiers
from hca_archive.orchestration.report import build_and_publish_report
from hca_archive.orchestration.request_operator import RequestArchiveOperator
from hca_archive.orchestration.runners.kubernetes import KubernetesFileJobOperator
from hca_archive.orchestration.runners.local import LocalFileJobOperator
from hca_archive.orchestration.sensors import ArchiveProgressSensor
from hca_archive.orchestration.step_record import recorded_step

log = logging.getLogger(__name__)

DAG_ID = "archive_submission"
# Patterns are checked with re.search, where "$" also matches before a final line break: END
# does not. Lower case only: ingest finds "2A0F..." as "2a0f...", but the run's claim, the
# request marker and the sweep's run id are keyed on the text, so another spelling would be
# another submission to them (a second run, a second DSP submission).
END = r"(?![\s\S])"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + END
# Airflow refuses to map more tasks than [core] max_map_length (1024 by default); larger plans
# are run in batches of consecutive jobs.
MAX_MAPPED_TASKS = 1024
NETWORK_RETRIES = {
    "retries": 4,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
# A file job killed with its worker is retried after this delay; tests that kill workers shorten it.
FILE_JOB_RETRY_DELAY_ENV = "HCA_ARCHIVE_FILE_JOB_RETRY_DELAY_SECONDS"
DEFAULT_FILE_JOB_RETRY_DELAY = timedelta(minutes=1)
DSP_UUID = "{{ requested_dsp_uuid(ti) }}"
SUBMISSION_UUID = "{{ params.submission_uuid }}"
ENVIRONMENT = "{{ params.environment }}"

PARAMS = {
    "submission_uuid": Param(
        type="string",
        pattern=UUID_PATTERN,
        title="Ingest submission UUID",
        description="The UUID of the ingest submission (envelope) to archive, in lower case; it "
        "must be in state Archiving. Example: 2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10",
    ),
    "environment": Param(
        "sandbox",
        enum=list(ENVIRONMENTS),
        title="Environment",
        description="Which ingest and DSP to talk to. Each environment is a set of Airflow "
        "connections named hca_<environment>_<service>.",
    ),
    "runner": Param(
        "local",
        enum=list(RUNNERS),
        title="Where file jobs run",
        description="local: on the Airflow worker; lsf: on the LSF cluster over SSH; "
        "kubernetes: one pod per job.",
    ),
    "alias_prefix": Param(
        "HCA",
        type="string",
        pattern=r"^[A-Za-z0-9_-]{1,32}" + END,
        title="Alias prefix",
        description="Prefix of the aliases of the archive entities created in DSP.",
    ),
    "exclude_types": Param(
        [],
        type="array",
        items={"type": "string", "pattern": r"^[A-Za-z][A-Za-z_]{0,63}" + END},
        title="Entity types to leave out",
        description="Metadata types the archiver should not archive (usually none).",
    ),
    "dry_run": Param(
        False,
        type="boolean",
        title="Dry run",
        description="Check the submission and, if the archiver already made its record, the "
        "upload plan; change nothing in ingest, the archiver or DSP.",
    ),
}


def unknown_params(names: Iterable[str], known: Iterable[str] = PARAMS) -> list[str]:
    """A problem for each name that is not a parameter: Airflow keeps it in the conf and ignores
    it, so a misspelt ``runer`` would run with the default runner without a word."""
    known = sorted(known)
    return [
        f"unknown parameter {name}; known: {', '.join(known)}"
        for name in sorted(set(names) - set(known), key=str)
    ]


def _hook(context: Any) -> Any:
    """The environment's hook; imported when a task runs, keeping DAG parsing free of clients."""
    from hca_archive.orchestration.hooks import HcaArchiveHook

    return HcaArchiveHook(context["params"]["environment"])


def requested_dsp_uuid(ti: Any) -> str:
    """The DSP submission ``request_archive`` asked for or found. A ``request_archive`` marked
    success by hand left none: say so, where a template would fail on ``None['dsp_uuid']``."""
    requested = ti.xcom_pull(task_ids="request_archive")
    dsp_uuid = requested.get("dsp_uuid") if isinstance(requested, dict) else None
    if not dsp_uuid:
        raise AirflowFailException(
            "request_archive left no DSP submission (was it marked success by hand?): clear "
            "request_archive, which finds the submission it asked for or asks the archiver"
        )
    return str(dsp_uuid)


def hold_claim(context: Any) -> None:
    """``pre_execute`` of the steps that ask the archiver, upload or complete: a task cleared in
    a run that had ended (failed) stops while another run for the submission is at work, rather
    than archive beside it (see ``run_claims.hold``)."""
    params = context["params"]
    if params["dry_run"] or not (other := run_claims.hold(context)):
        return
    task_id = getattr(context["ti"], "task_id", "this task")
    with recorded_step(context):
        raise archiving.RunStopped(
            f"run {other} is archiving submission {params['submission_uuid']}, started after "
            f"this run had ended: this run leaves it to that one. Should that run fail, clear "
            f"{task_id} here or that run's failed task, not both"
        )


@task(task_id="check_submission", **NETWORK_RETRIES)
def check_submission(**context: Any) -> dict[str, str]:
    params = context["params"]
    with recorded_step(context) as record:
        if problems := unknown_params(getattr(context.get("dag_run"), "conf", None) or {}):
            raise archiving.RunStopped(f"the run's conf: {'; '.join(problems)}")
        envelope = archiving.check_envelope(
            _hook(context).ingest, params["submission_uuid"], params["environment"]
        )
        record.outcome = f"submission {envelope.uuid} is {envelope.state}"
        if envelope.state in archiving.ARCHIVED_OR_LATER:
            record.outcome += ": already archived, nothing to do"
            raise AirflowSkipException(record.outcome)
        # the sweep, and runs started later, leave the submission to the run that claims it
        if not params["dry_run"] and (other := run_claims.claim(context)):
            record.outcome += f": run {other} is archiving it; this run leaves it to that one"
            raise AirflowSkipException(record.outcome)
        log.info("%s", record.outcome)
        return {"uuid": envelope.uuid, "state": envelope.state}


@task(task_id="fetch_plan", **NETWORK_RETRIES)
def fetch_plan(**context: Any) -> list[list[dict[str, Any]]]:
    """The plan's jobs in batches, one batch per mapped file-job task."""
    with recorded_step(context) as record:
        dsp_uuid = requested_dsp_uuid(context["ti"])
        hook = _hook(context)
        plan = archiving.fetch_plan(hook.archiver, dsp_uuid, MAX_MAPPED_TASKS, hook.dsp.root)
        record.outcome = f"upload plan: {plan.job_count} jobs in {len(plan.batches)} tasks"
        log.info("%s", record.outcome)
        return plan.batches


@task.branch(task_id="choose_runner")
def choose_runner(**context: Any) -> list[str]:
    params = context["params"]
    if params["dry_run"]:
        log.info("dry run: no file job runs")
        return []
    return [f"run_{params['runner']}"]


@task(task_id="complete_submission", pre_execute=hold_claim, **NETWORK_RETRIES)
def complete_submission(**context: Any) -> str:
    from airflow.sdk import Variable

    with recorded_step(context) as record:
        dsp_uuid = requested_dsp_uuid(context["ti"])
        # A Variable, not XCom: the note of the request must outlive a retry or a cleared task.
        marker = completion_marker(context["params"]["environment"], dsp_uuid)
        # When DSP was first seen Completed with the envelope not archived (this step, or the
        # completion wait that stopped on it): the archiver's write-back starts only then.
        seen = writeback_note(context["params"]["environment"], dsp_uuid)
        hook = _hook(context)
        record.outcome = archiving.complete_submission(
            hook.archiver,
            hook.dsp,
            hook.ingest,
            dsp_uuid,
            context["params"]["submission_uuid"],
            requested_at=Variable.get(marker, default=None, deserialize_json=True),
            grace_seconds=hook.complete_grace().total_seconds(),
            writeback_grace_seconds=hook.writeback_grace().total_seconds(),
            mark_requested=lambda: Variable.set(marker, time.time(), serialize_json=True),
            writeback_seen_at=Variable.get(seen, default=None, deserialize_json=True),
            mark_writeback_seen=lambda: Variable.set(seen, time.time(), serialize_json=True),
        )
        log.info("%s", record.outcome)
        return record.outcome


def completion_marker(environment: str, dsp_uuid: str) -> str:
    """The Variable keeping when the archiver was last asked to complete the DSP submission."""
    return f"hca_archive_complete__{environment}__{dsp_uuid}"


def writeback_note(environment: str, dsp_uuid: str) -> str:
    """The Variable keeping when DSP was first seen Completed with the envelope not archived."""
    return f"hca_archive_writeback_seen__{environment}__{dsp_uuid}"


def forget_completion(context: Any, dsp_uuid: str | None) -> None:
    """Remove the completion's Variables once ``wait_for_completion`` of this run saw DSP
    Completed and the envelope archived (its value; a task marked success by hand has none).

    Both states are final: a cleared ``complete_submission`` then asks nothing and reads
    neither, and a later run skips at ``check_submission``. A run that did not see it (a dry
    run, one that left the submission to another run) removes nothing: the other run may need
    them. The request marker is gone already (``request_archive`` removes it once the record
    exists), and the claim is ``run_claims.release``'s. A failure is only logged, as there.
    """
    from airflow.sdk import Variable

    if not dsp_uuid or context["ti"].xcom_pull(task_ids="wait_for_completion") is None:
        return
    environment = context["params"]["environment"]
    for key in (completion_marker(environment, dsp_uuid), writeback_note(environment, dsp_uuid)):
        try:
            Variable.delete(key)
        except Exception as error:  # the report matters more than a note nothing reads
            log.warning("could not remove the Variable %s: %s", key, error)


# Retried when Airflow's own API does not answer (the XCom push, the note); a failed run's report
# fails at once (AirflowFailException is never retried).
@task(task_id="report", trigger_rule="all_done", **NETWORK_RETRIES)
def report(**context: Any) -> dict[str, Any]:
    summary = build_and_publish_report(context)  # fails the task when the run failed
    forget_completion(context, summary["dsp_submission"])
    run_claims.release(context)
    return summary


def _wait(task_id: str, check: str, awaiting: str, timeout: timedelta, **kwargs: Any) -> Any:
    return ArchiveProgressSensor(
        task_id=task_id,
        environment=ENVIRONMENT,
        check=check,
        awaiting=awaiting,
        timeout=timeout,
        **NETWORK_RETRIES,
        **kwargs,
    )


def _file_jobs(operator: type, task_id: str, plan: Any, **options: Any) -> Any:
    """One mapped task per plan batch, named in the UI after its job."""
    return operator.partial(
        task_id=task_id,
        environment=ENVIRONMENT,
        map_index_template="{{ job_label }}",
        pre_execute=hold_claim,
        retries=2,
        retry_delay=env_duration(FILE_JOB_RETRY_DELAY_ENV, DEFAULT_FILE_JOB_RETRY_DELAY, "seconds"),
        **options,
    ).expand(batch=plan)


def build_archive_dag() -> DAG:
    with DAG(
        dag_id=DAG_ID,
        schedule=None,
        # Runs only when triggered: paused (Airflow's default for new DAGs), the runs a wrangler
        # or a sweep triggers would wait unseen, and the sweep's trigger task would fail.
        is_paused_upon_creation=False,
        params=PARAMS,
        tags=["hca", "archive"],
        max_active_runs=16,
        render_template_as_native_obj=True,
        user_defined_macros={"requested_dsp_uuid": requested_dsp_uuid},
        doc_md=__doc__,
        default_args={"owner": "hca-wranglers"},
        **run_notifiers(),
    ) as dag:
        checked = check_submission()
        requested = RequestArchiveOperator(
            task_id="request_archive",
            environment=ENVIRONMENT,
            submission_uuid=SUBMISSION_UUID,
            alias_prefix="{{ params.alias_prefix }}",
            exclude_types="{{ params.exclude_types }}",
            dry_run="{{ params.dry_run }}",
            pre_execute=hold_claim,
            **NETWORK_RETRIES,
        )
        metadata = _wait(
            "check_metadata",
            "metadata",
            "metadata validation",
            timedelta(hours=2),
            arguments={"dsp_uuid": DSP_UUID},
            poll_interval=10,
        )
        plan = fetch_plan()
        runner = choose_runner()
        run_local = _file_jobs(
            LocalFileJobOperator,
            "run_local",
            plan,
            execution_timeout=FILE_JOB_TIME_LIMIT,  # on_kill then stops the job's process group
            max_active_tis_per_dagrun=4,
        )
        run_lsf = _file_jobs(LsfFileJobOperator, "run_lsf", plan, max_active_tis_per_dagrun=64)
        run_kubernetes = _file_jobs(
            KubernetesFileJobOperator,
            "run_kubernetes",
            plan,
            execution_timeout=FILE_JOB_TIME_LIMIT,  # the pod's own deadline, too
            max_active_tis_per_dagrun=16,
        )
        validation = _wait(
            "wait_for_validation",
            "validation",
            "file validation and blockers",
            timedelta(hours=12),
            arguments={"dsp_uuid": DSP_UUID},
            poll_interval=15,
            trigger_rule="none_failed_min_one_success",
        )
        completed = complete_submission()
        completion = _wait(
            "wait_for_completion",
            "completion",
            "DSP processing, accessions and the envelope Archived",
            timedelta(hours=24),
            arguments={"dsp_uuid": DSP_UUID, "submission_uuid": SUBMISSION_UUID},
            poll_interval=15,
            stuck_note=writeback_note(ENVIRONMENT, DSP_UUID),
        )
        checked >> requested >> metadata >> plan >> runner
        runner >> [run_local, run_lsf, run_kubernetes] >> validation >> completed >> completion
        # After every task, not only the last: a failed file job must not let the report run
        # while its sibling jobs are still going.
        dag.tasks >> report()
    return dag
