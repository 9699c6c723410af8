"""Run a batch of upload-plan jobs as one LSF job over SSH, deferring while it runs.

Per mapped task: a work directory ``<work root>/<run>/job-<map index>`` holding the staged plan
(the batch), a credentials file (mode 0600, deleted by the job once read), LSF's stdout/stderr and
the durable ``result-<i>.json`` of each job. The LSF job name is derived from (dag, run, map
index), so a retry or a restarted worker adopts the job already pending, running or done instead
of starting a second copy; only after EXIT (or failed results) is the batch submitted again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.log import mask_secret

from hca_archive.filejob.credentials import ENVIRONMENT_NAMES
from hca_archive.lsf.commands import bjobs_by_name_argv, bjobs_status_argv, bkill_argv, bsub_argv
from hca_archive.lsf.names import JobPaths, job_name, job_paths
from hca_archive.lsf.outputs import (
    JobState,
    LsfCommandError,
    describe_exit,
    parse_bjobs_json,
    parse_bkill,
    parse_bsub,
)
from hca_archive.lsf.resources import LsfSettings
from hca_archive.orchestration.connections import conn_id
from hca_archive.orchestration.extra_links import FileJobLink, push_file_job_url
from hca_archive.orchestration.file_job_results import (
    FILE_JOB_TIME_LIMIT,
    check_result,
    keep_failed_result,
    label_task,
)
from hca_archive.orchestration.step_record import recorded_step
from hca_archive.plan import PlanJob, parse_plan

if TYPE_CHECKING:  # SSH, S3 and trigger machinery load when a task runs, not when DAGs parse
    from hca_archive.orchestration.lsf.cluster import Cluster

CredentialsSource = Callable[[str], Mapping[str, str]]
KILL_WAIT_SECONDS = 120


class LsfFileJobOperator(BaseOperator):
    """Stage, submit (or adopt) and await plan jobs on LSF; returns their result JSON.

    The result is ``hca-archive run-job``'s document for the batch, ``{"jobs": [...],
    "succeeded": n, "failed": n}``; a failed job fails the task naming it (``check_result``).

    :param batch: plan jobs (``fileUploadPlan`` entries) run one after the other in one LSF job;
        or ``job``: a single plan job. Staged as ``{"jobs": batch}``, never on a command line.
    :param environment: deployment environment (sandbox, dev, staging, prod).
    :param ssh_conn_id: SSH connection of the cluster, by default ``hca_<environment>_ssh``;
        its host key must be verified (``host_key`` extra or known_hosts). Its extra may set
        ``lsf_queue``, ``lsf_memory_mb``, ``lsf_cores``, ``lsf_wall_time``, ``lsf_work_root``,
        ``lsf_image``, ``lsf_command_prefix``, ``lsf_memory_floor_mb``, ``lsf_memory_per_gib_mb``,
        ``lsf_memory_cap_mb`` (the parameters below win; ``lsf_queue`` for the queue), and
        ``lsf_job_url``, a job's web page with ``{job_id}`` in it, for the "LSF job / pod" link.
    :param credentials: ``credentials(environment)`` returns the job's secrets keyed by the
        credentials-file names (``HCA_AAP_URL``, ``HCA_AAP_USERNAME``, ``HCA_AAP_PASSWORD``,
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
        ``AWS_ENDPOINT_URL``); by default ``HcaArchiveHook(environment).file_job_credentials()``.
        Called at submission only; the values are masked in logs and reach the cluster only in
        the 0600 credentials file.
    :param input_bytes: input size of the largest job, for memory sizing; default: asked of S3
        (HEAD of each input with the job's credentials; a job it cannot size counts as the
        memory floor).
    :param command_prefix: what runs ``hca-archive`` instead of ``singularity exec docker://IMAGE
        hca-archive`` (a list of words or one string).
    :param wait_timeout: how long the task waits for its LSF job (pending included) before it
        kills the job and fails without retrying.
    """

    # Not the batch: plan content is untrusted and must never go through Jinja.
    template_fields = ("environment", "lsf_queue", "memory_mb", "wall_time", "input_bytes")
    ui_color = "#e8f0fd"
    operator_extra_links = (FileJobLink(),)

    def __init__(
        self,
        *,
        environment: str,
        ssh_conn_id: str | None = None,
        credentials: CredentialsSource | None = None,
        batch: list[dict[str, Any]] | None = None,
        job: dict[str, Any] | None = None,
        lsf_queue: str | None = None,
        memory_mb: int | None = None,
        cores: int | None = None,
        wall_time: str | int | None = None,
        work_root: str | None = None,
        image: str | None = None,
        command_prefix: str | list[str] | None = None,
        input_bytes: int | None = None,
        poll_interval: float = 30.0,
        log_tail_bytes: int = 8192,
        wait_timeout: timedelta = FILE_JOB_TIME_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (batch is None) == (job is None):
            raise ValueError("LsfFileJobOperator needs either batch (a list of plan jobs) or job")
        self.batch = batch if batch is not None else [job]
        self.environment = environment
        self.ssh_conn_id = ssh_conn_id
        self.credentials = credentials
        self.lsf_queue = lsf_queue  # not ``queue``: BaseOperator's executor queue
        self.memory_mb = memory_mb
        self.cores = cores
        self.wall_time = wall_time
        self.work_root = work_root
        self.image = image
        self.command_prefix = command_prefix
        self.input_bytes = input_bytes
        self.poll_interval = poll_interval
        self.log_tail_bytes = log_tail_bytes
        self.wait_timeout = wait_timeout
        self._lsf_job_id: str | None = None
        self._lsf_job_name: str | None = None
        self._job_directory: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        with recorded_step(context) as record:
            label = label_task(context, self.batch)
            plan_jobs = parse_plan({"jobs": self.batch}).jobs  # PlanError names every problem
            ti = context["ti"]
            name = self._lsf_job_name = job_name(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
            with _connect(self._ssh_conn_id()) as cluster:
                extra = cluster.extra
                paths = job_paths(
                    self._settings(extra).work_root, ti.dag_id, ti.task_id, ti.run_id, ti.map_index
                )
                self._job_directory = paths.directory
                existing = _pick_existing(_jobs_named(cluster, name))
                stale = not _staged_plan_is(cluster, paths, self.batch)
                if stale:  # the run was cleared after its upload plan changed: start afresh
                    self.log.warning(
                        "%s holds another batch than this task's: submitting anew", paths.directory
                    )
                    if existing is not None and existing.active:
                        self._end(cluster, existing.job_id)
                    existing = None
                if existing is not None and existing.stat == "DONE":
                    _, missing = _collect_results(cluster, paths, plan_jobs)
                    if missing == len(plan_jobs):  # it ran the batch before a re-plan whose
                        self.log.warning(  # submission failed after staging (which clears them)
                            "LSF job %s (%s) is DONE but left none of this batch's results: "
                            "it ran another batch; submitting anew",
                            existing.job_id,
                            name,
                        )
                        existing = None
                if existing is not None and existing.stat == "DONE":
                    self.log.info(
                        "LSF job %s (%s) already finished: adopting it", existing.job_id, name
                    )
                    result = self._conclude(
                        cluster, paths, plan_jobs, existing.job_id, existing, ti
                    )
                    record.outcome = _outcome(label, result)
                    return result
                if (existing is None or existing.stat == "EXIT") and not stale:
                    # an older copy's results, e.g. of a job that finished beside a killed twin
                    result, _ = _collect_results(cluster, paths, plan_jobs)
                    if _all_succeeded(result):
                        self.log.info(
                            "%s holds successful results: not resubmitting", paths.directory
                        )
                        check_result(result, self.log, ti)
                        record.outcome = _outcome(label, result)
                        return result
                if existing is not None and existing.active:
                    self.log.info(
                        "LSF job %s (%s) is %s: adopting it", existing.job_id, name, existing.stat
                    )
                    job_id = existing.job_id
                else:  # never submitted, or EXIT / failed results: this is a retry
                    submitted = self._submit(cluster, name, plan_jobs, extra, paths)
                    job_id = self._keep_oldest(cluster, name, submitted)
            self._lsf_job_id = job_id
            _push_job_url(ti, extra, job_id)
            self._defer(job_id, name, paths, time.time() + self.wait_timeout.total_seconds())

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumed by the trigger: the event is a wake-up, the job's state is checked here."""
        start = getattr(context["ti"], "start_date", None)  # the step's time includes the wait
        with recorded_step(context, start.timestamp() if start else None) as record:
            label = label_task(context, self.batch)
            job_id, name = str(event["job_id"]), str(event["job_name"])
            self._lsf_job_id, self._lsf_job_name = job_id, name
            self._job_directory = str(event["directory"])
            self.log.info("Trigger: %s", event.get("message"))
            paths = JobPaths(str(event["directory"]))
            with _connect(self._ssh_conn_id()) as cluster:
                states = self._states_or_wait_again(cluster, job_id, name, paths, event)
                current = states.get(job_id)
                if current is None or not current.active:
                    plan_jobs = parse_plan({"jobs": self.batch}).jobs
                    result = self._conclude(
                        cluster, paths, plan_jobs, job_id, current, context["ti"]
                    )
                    record.outcome = _outcome(label, result)
                    return result
                if event.get("outcome") == "timeout":
                    cluster.remove(paths.credentials)  # a job still pending never reads them
                    try:
                        self._end(cluster, job_id)
                        killed = "killed it"
                    except AirflowException as error:  # UNKWN, ZOMBI: a retry would wait again
                        killed = f"asked LSF to kill it, but {error}"
                    raise AirflowFailException(
                        f"LSF job {job_id} ({name}) was still {current.stat} after "
                        f"{self.wait_timeout}: {killed}; see the cluster's queue and the job's "
                        f"log in {paths.directory}"
                    )
            self.log.info("LSF job %s is still %s: waiting again", job_id, current.stat)
            self._defer(job_id, name, paths, event.get("deadline"))

    def _states_or_wait_again(
        self, cluster: Cluster, job_id: str, name: str, paths: JobPaths, event: dict[str, Any]
    ) -> dict[str, JobState]:
        """The job's state from bjobs; while LSF is down (it answers so, or not at all) the job
        may well still run: wait again until the deadline instead of failing the task, which
        would spend its retries on an mbatchd restart and leave the job without a task."""
        from hca_archive.orchestration.lsf.cluster import ClusterTimeout

        try:
            answer = cluster.run(bjobs_status_argv([job_id]))
            return parse_bjobs_json(answer.stdout, answer.stderr, answer.returncode).by_id()
        except (LsfCommandError, ClusterTimeout) as error:
            deadline = event.get("deadline")
            if deadline is not None and time.time() >= deadline:
                raise
            self.log.warning("Cannot ask LSF about job %s now (%s): waiting again", job_id, error)
            self._defer(job_id, name, paths, deadline)

    def on_kill(self) -> None:
        """Stop the LSF job with the task (known by id, or else by name)."""
        if not (self._lsf_job_id or self._lsf_job_name):
            return
        with _connect(self._ssh_conn_id()) as cluster:
            job_ids = [self._lsf_job_id] if self._lsf_job_id else []
            if not job_ids and self._lsf_job_name:
                named = _jobs_named(cluster, self._lsf_job_name)
                job_ids = [job.job_id for job in named if job.active]
            if job_ids:
                result = cluster.run(bkill_argv(job_ids))
                self.log.info("bkill: %s", parse_bkill(result.stdout, result.stderr))
            if self._job_directory:  # a job killed while pending never reads them
                cluster.remove(JobPaths(self._job_directory).credentials)

    def _ssh_conn_id(self) -> str:
        return self.ssh_conn_id or conn_id(self.environment, "ssh")

    def _credentials(self) -> Mapping[str, Any]:
        if self.credentials is not None:
            return self.credentials(self.environment)
        from hca_archive.orchestration.hooks import HcaArchiveHook

        return HcaArchiveHook(self.environment).file_job_credentials()

    def _settings(self, extra: Mapping[str, Any], input_bytes: int | None = None) -> LsfSettings:
        params = {
            "queue": self.lsf_queue,
            "memory_mb": self.memory_mb,
            "cores": self.cores,
            "wall_time": self.wall_time,
            "work_root": self.work_root,
            "image": self.image,
            "command_prefix": self.command_prefix,
        }
        return LsfSettings.resolve(params, extra, input_bytes=input_bytes)

    def _submit(
        self,
        cluster: Cluster,
        name: str,
        plan_jobs: tuple[PlanJob, ...],
        extra: Mapping[str, Any],
        paths: JobPaths,
    ) -> str:
        secrets = _credentials_file(self._credentials(), self.environment)
        input_bytes = self.input_bytes
        if input_bytes is None and self.memory_mb is None and not extra.get("lsf_memory_mb"):
            input_bytes = _largest_input(plan_jobs, secrets)
        settings = self._settings(extra, input_bytes)
        cluster.make_private_dirs(paths.directory)
        for index in range(len(plan_jobs)):  # results of a failed attempt must not be read as ours
            cluster.remove(paths.result(index))
        cluster.write_private(paths.plan, json.dumps({"jobs": self.batch}).encode())
        cluster.write_private(paths.credentials, json.dumps(secrets).encode())
        result = cluster.run(bsub_argv(name, settings, paths))
        if result.returncode != 0:  # refused: no job will ever read (and delete) the credentials
            cluster.remove(paths.credentials)
        submission = parse_bsub(result.stdout, result.stderr, result.returncode)
        self.log.info(
            "Submitted LSF job %s (%s) to queue %s: %d job(s), %d MB (largest input: %s bytes), "
            "%d cores, work directory %s",
            submission.job_id,
            name,
            submission.queue,
            len(plan_jobs),
            settings.memory_mb,
            "unknown" if input_bytes is None else input_bytes,
            settings.cores,
            paths.directory,
        )
        return submission.job_id

    def _end(self, cluster: Cluster, job_id: str) -> None:
        """bkill a job of another batch and wait until LSF has ended it: its run-job must not
        still hold the work directory when the new job starts."""
        killed = cluster.run(bkill_argv([job_id]))
        self.log.info("bkill: %s", parse_bkill(killed.stdout, killed.stderr))
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            answer = cluster.run(bjobs_status_argv([job_id]))
            states = parse_bjobs_json(answer.stdout, answer.stderr, answer.returncode).by_id()
            if job_id not in states or not states[job_id].active:
                return
            time.sleep(1)
        raise AirflowException(f"LSF job {job_id} did not end {KILL_WAIT_SECONDS} s after bkill")

    def _keep_oldest(self, cluster: Cluster, name: str, job_id: str) -> str:
        """If another worker submitted the same job meanwhile, keep its (older) job, kill ours."""
        active = [job for job in _jobs_named(cluster, name) if job.active]
        oldest = min(active, key=lambda job: int(job.job_id), default=None)
        if oldest is None or oldest.job_id == job_id:
            return job_id
        self.log.warning(
            "LSF job %s (%s) was submitted concurrently: killing our %s and adopting it",
            oldest.job_id,
            name,
            job_id,
        )
        cluster.run(bkill_argv([job_id]))
        return oldest.job_id

    def _defer(self, job_id: str, name: str, paths: JobPaths, deadline: float | None) -> NoReturn:
        from hca_archive.orchestration.lsf.trigger import LsfJobTrigger

        self.defer(
            trigger=LsfJobTrigger(
                self._ssh_conn_id(),
                job_id,
                name,
                paths.directory,
                poll_interval=self.poll_interval,
                deadline=deadline,
            ),
            method_name="execute_complete",
        )

    def _conclude(
        self,
        cluster: Cluster,
        paths: JobPaths,
        plan_jobs: tuple[PlanJob, ...],
        job_id: str,
        state: JobState | None,
        ti: Any = None,
    ) -> dict[str, Any]:
        """Log the job's output and return the batch's results, or fail with the reason."""
        cluster.remove(paths.credentials)  # the job deletes it once read; it may never have run
        for label, path in (("stdout", paths.stdout), ("stderr", paths.stderr)):
            tail = cluster.tail(path, self.log_tail_bytes)
            if tail:
                self.log.info("LSF job %s %s (last %d bytes):\n%s", job_id, label, len(tail), tail)
        result, missing = _collect_results(cluster, paths, plan_jobs)
        if state is not None and state.stat == "EXIT":
            keep_failed_result(ti, result)
            raise AirflowException(describe_exit(job_id, state.exit_code) + _job_errors(result))
        if missing == len(plan_jobs):
            known = state.stat if state is not None else "no longer known to LSF"
            raise AirflowException(
                f"LSF job {job_id} is {known} but left no result file in {paths.directory}"
            )
        check_result(result, self.log, ti)
        for job in plan_jobs:  # the inputs and BAMs are on DSP now; a failed job keeps them
            cluster.run(["rm", "-rf", "--", paths.scratch(job.index)])
        return result


def _push_job_url(ti: Any, extra: Mapping[str, Any], job_id: str) -> None:
    template = extra.get("lsf_job_url")
    if template:
        push_file_job_url(ti, str(template).replace("{job_id}", job_id))


def _credentials_file(values: Mapping[str, Any], environment: str) -> dict[str, str]:
    """The credentials file's content, checked against the names the job reads; values masked."""
    allowed = set(ENVIRONMENT_NAMES.values())
    unknown = sorted(str(key) for key in values if key not in allowed)
    if unknown:
        raise ValueError(
            f"credentials for environment {environment!r}: unknown keys {', '.join(unknown)} "
            f"(expected some of {', '.join(sorted(allowed))})"
        )
    secrets = {str(key): str(value) for key, value in values.items() if value}
    for value in secrets.values():
        mask_secret(value)
    return secrets


def _connect(ssh_conn_id: str) -> Cluster:
    from hca_archive.orchestration.lsf.cluster import Cluster

    return Cluster(ssh_conn_id)


def _jobs_named(cluster: Cluster, name: str) -> tuple[JobState, ...]:
    result = cluster.run(bjobs_by_name_argv(name))
    return parse_bjobs_json(result.stdout, result.stderr, result.returncode).jobs


def _pick_existing(jobs: tuple[JobState, ...]) -> JobState | None:
    """The job to adopt: the newest active one, else the newest that finished (DONE or EXIT).

    Not a DONE job before a newer EXIT one: after a re-plan, the newer job ran the staged batch
    and failed, and the older one's results belong to the batch before.
    """

    def newest(candidates: list[JobState]) -> JobState | None:
        return max(candidates, key=lambda job: int(job.job_id), default=None)

    return newest([job for job in jobs if job.active]) or newest(
        [job for job in jobs if job.finished]
    )


def _largest_input(plan_jobs: tuple[PlanJob, ...], credentials: Mapping[str, str]) -> int | None:
    """The jobs run one after the other, so memory follows the largest one; a job S3 cannot
    size gets the floor, which the largest known size can only raise (None: none known)."""
    from hca_archive.orchestration.lsf.sizes import s3_input_bytes

    sizes = [s3_input_bytes(job, credentials) for job in plan_jobs]
    return max((size for size in sizes if size is not None), default=None)


def _collect_results(
    cluster: Cluster, paths: JobPaths, plan_jobs: tuple[PlanJob, ...]
) -> tuple[dict[str, Any], int]:
    """The batch's result document from each job's ``result-<i>.json``, and how many are missing
    (a job without one counts as failed)."""
    entries = []
    missing = 0
    for job in plan_jobs:
        entry = _read_entry(cluster, paths.result(job.index))
        if entry is None:
            missing += 1
            entry = {
                "index": job.index,
                "manifest_id": job.manifest_id,
                "label": job.label,
                "status": "failed",
                "error": f"no result: the LSF job ended before writing {paths.result(job.index)}",
            }
        entries.append(entry)
    succeeded = sum(entry.get("status") == "succeeded" for entry in entries)
    return {"jobs": entries, "succeeded": succeeded, "failed": len(entries) - succeeded}, missing


def _staged_plan_is(cluster: Cluster, paths: JobPaths, batch: list[dict[str, Any]]) -> bool:
    """Whether the plan staged in the job's directory is ``batch`` (or none is staged yet)."""
    raw = cluster.read(paths.plan)
    if raw is None:
        return True
    try:
        return json.loads(raw) == {"jobs": batch}
    except ValueError:
        return False


def _read_entry(cluster: Cluster, path: str) -> dict[str, Any] | None:
    raw = cluster.read(path)
    if raw is None:
        return None
    try:
        document = json.loads(raw)
        (entry,) = document["jobs"]
    except (ValueError, KeyError, TypeError):
        raise AirflowException(f"result file {path} does not hold one job's result") from None
    if not isinstance(entry, dict):
        raise AirflowException(f"result file {path} does not hold one job's result")
    return entry


def _all_succeeded(result: dict[str, Any]) -> bool:
    return result["failed"] == 0 and bool(result["jobs"])


def _job_errors(result: dict[str, Any]) -> str:
    """The errors the jobs reported themselves (not those of jobs that left no result)."""
    errors = [
        f"{job.get('label')}: {job['error']}"
        for job in result["jobs"]
        if job.get("error") and not str(job["error"]).startswith("no result:")
    ]
    return f"; {'; '.join(errors)}" if errors else ""


def _outcome(label: str, result: dict[str, Any]) -> str:
    return f"{label}: {result['succeeded']} job(s) archived on LSF"
