"""``hca-archive run-job``: run one job (or all jobs) of a file upload plan.

Secrets come from the environment or ``--credentials-file`` (never from arguments). Progress
and log lines go to stderr; the result JSON goes to stdout and, per job, to
``<workdir>/result-<index>.json``, written atomically: an LSF runner reads it after the job
has left ``bjobs``. The exit status is 1 when any job failed, 2 when nothing could be run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from hca_archive.clients import AapTokenSource
from hca_archive.filejob.credentials import (
    DEFAULT_AWS_REGION,
    Credentials,
    CredentialsError,
    load_credentials,
)
from hca_archive.filejob.job import Interrupted, JobOutcome, JobRunner
from hca_archive.filejob.s3download import DEFAULT_PART_SIZE, MiB, S3Downloader
from hca_archive.filejob.selection import select_jobs
from hca_archive.filejob.tus import DEFAULT_CHUNK_SIZE
from hca_archive.filejob.workdir import exclusive, write_json_atomically
from hca_archive.plan import PlanJob

log = logging.getLogger("hca_archive")

EXIT_JOB_FAILED = 1
EXIT_NOT_RUN = 2
MAX_PLAN_BYTES = 64 * MiB
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", type=Path, required=True, help="file upload plan (JSON)")
    parser.add_argument("--job", type=int, help="index of the job to run (default: every job)")
    parser.add_argument("--workdir", type=Path, required=True, help="work directory of the job(s)")
    parser.add_argument(
        "--credentials-file",
        type=Path,
        help="JSON file (mode 0600) with HCA_AAP_* and AWS_* keys; the environment fills the rest",
    )
    parser.add_argument(
        "--delete-credentials-file",
        action="store_true",
        help="delete the credentials file as soon as it has been read",
    )
    parser.add_argument(
        "--chunk-size",
        type=byte_size,
        default=DEFAULT_CHUNK_SIZE,
        help="tus upload chunk size: bytes, or with a K/M/G suffix (default 32M)",
    )
    parser.add_argument(
        "--part-size",
        type=byte_size,
        default=DEFAULT_PART_SIZE,
        help="S3 ranged download part size: bytes, or with a K/M/G suffix (default 16M)",
    )
    parser.add_argument(
        "--download-workers", type=int, default=4, help="concurrent S3 range requests"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads for the conversion")
    parser.add_argument(
        "--lock-dir",
        type=Path,
        help="directory shared by every run's jobs: a copy of a job (same DSP submission and "
        "manifest) that another run is running waits for it there, then finds its files on DSP",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        help="seconds between progress lines when stderr is not a terminal",
    )


def byte_size(text: str) -> int:
    """``"8M"`` -> 8 MiB; plain digits are bytes. For argparse: bad input is a usage error."""
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive size like 65536, 64K or 8M")
    return int(number) * unit


def run(args: argparse.Namespace) -> int:
    _configure_logging()
    if args.delete_credentials_file and args.credentials_file is None:
        return _refuse("--delete-credentials-file needs --credentials-file")
    for option in ("download_workers", "threads"):
        if getattr(args, option) < 1:
            return _refuse(f"--{option.replace('_', '-')} must be at least 1")
    try:
        credentials = load_credentials(
            os.environ, args.credentials_file, delete=args.delete_credentials_file
        )
    except CredentialsError as error:
        return _refuse(str(error))
    if credentials.dsp_url is None:  # the plan names where the AAP token goes: not on trust
        return _refuse(
            "no DSP named: set HCA_DSP_URL (or dsp_url in the credentials file) to the "
            "environment's DSP; only a plan for that host is run"
        )
    _redact_in_logs(credentials)
    try:
        jobs, outcomes = select_jobs(_read_plan(args.plan), args.job, dsp_url=credentials.dsp_url)
    except ValueError as error:  # PlanUnusable included
        return _refuse(str(error))
    try:  # an AAP or S3 endpoint URL that is not usable: nothing can run
        runner = _build_runner(args, credentials)
    except ValueError as error:
        return _refuse(str(error))
    try:
        args.workdir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _refuse(f"cannot create work directory {args.workdir}: {error.strerror}")
    for outcome in outcomes:
        log.error("job %d (%s): %s", outcome.index, outcome.label, outcome.error)
        _write_result_or_report(args.workdir, outcome)
    with _stop_on_signals():
        outcomes += _run_all(runner, jobs, args.workdir, args.lock_dir)
    document = result_document(sorted(outcomes, key=lambda outcome: outcome.index))
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return EXIT_JOB_FAILED if document["failed"] else 0


def result_document(outcomes: list[JobOutcome]) -> dict[str, Any]:
    failed = sum(outcome.status != "succeeded" for outcome in outcomes)
    return {
        "jobs": [_masked(outcome.to_dict()) for outcome in outcomes],
        "succeeded": len(outcomes) - failed,
        "failed": failed,
    }


def _run_all(
    runner: JobRunner, jobs: list[PlanJob], workdir: Path, lock_dir: Path | None
) -> list[JobOutcome]:
    """Every job's outcome, also when a signal comes between jobs."""
    outcomes = []
    for job in jobs:
        try:
            outcome = _run_one(runner, job, workdir, lock_dir)
        except Interrupted as error:  # before the job's lock was taken: no result file
            runner.stopped = runner.stopped or str(error)
            outcome = _not_run(job, runner.stopped)
        outcomes.append(outcome)
    return outcomes


def _run_one(runner: JobRunner, job: PlanJob, workdir: Path, lock_dir: Path | None) -> JobOutcome:
    """Run ``job`` unless another process runs it; only its runner writes its result file."""
    outcome = None
    try:
        with exclusive(workdir / f"job-{int(job.index)}.lock") as held:
            if not held:
                return _not_run(job, f"another run-job process is running it in {workdir}")
            outcome = _run_holding_the_lock(runner, job, workdir, lock_dir)
    except Interrupted as error:  # as the lock was taken (not started) or released (done)
        runner.stopped = runner.stopped or str(error)
    return outcome or _not_run(job, str(runner.stopped))


def _run_holding_the_lock(
    runner: JobRunner, job: PlanJob, workdir: Path, lock_dir: Path | None
) -> JobOutcome:
    outcome = None
    try:
        (workdir / f"result-{int(job.index)}.json").unlink(missing_ok=True)  # a stale marker
        if not runner.stopped:
            with _after_other_runs(job, lock_dir, workdir):
                outcome = runner.run(job, workdir)
    except Interrupted as error:  # stopped while waiting for another run's copy
        runner.stopped = f"{error} while waiting for another run's copy of this job"
    if outcome is None:
        outcome = _not_run(job, str(runner.stopped))
    try:
        _write_result_or_report(workdir, outcome)
    except Interrupted as error:  # only the first signal interrupts: writing again completes
        runner.stopped = str(error)
        _write_result_or_report(workdir, outcome)
    return outcome


@contextmanager
def _after_other_runs(job: PlanJob, lock_dir: Path | None, workdir: Path) -> Iterator[None]:
    """Wait while another run (a wrangler's and the sweep's, started together) runs this job.

    Both runs share the submission's DSP submission: the second copy then finds the files on DSP
    instead of uploading them again. The key is what the job uploads, unique in a plan.
    """
    if lock_dir is None:
        yield
        return
    uploads = "\n".join(sorted(job.uploads))
    key = hashlib.sha256(f"{job.submission_url}\n{uploads}".encode()).hexdigest()
    with contextlib.suppress(OSError):  # then the lock file cannot be opened: exclusive() says so
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def waiting(holder: str) -> None:
        log.info(
            "job %d (%s): another run is running this job for the same DSP submission (%s); "
            "waiting for it",
            job.index,
            job.label,
            holder or "no details",
        )

    holder = f"host {socket.gethostname()}, pid {os.getpid()}, work directory {workdir}"
    with exclusive(lock_dir / f"{key}.lock", on_busy=waiting, holder=holder):
        yield


def _not_run(job: PlanJob, reason: str) -> JobOutcome:
    outcome = JobOutcome(job.index, job.manifest_id, job.label, status="failed")
    outcome.error = f"job {job.index} ({job.label}): not started: {reason}"
    log.error("%s", outcome.error)
    return outcome


def _write_result(workdir: Path, outcome: JobOutcome) -> None:
    """The durable marker of one job, read by an LSF runner after the job left ``bjobs``."""
    write_json_atomically(workdir / f"result-{int(outcome.index)}.json", result_document([outcome]))


def _write_result_or_report(workdir: Path, outcome: JobOutcome) -> None:
    """``_write_result``; when the file cannot be written (a full disk, lost permissions) the
    job fails, saying so, and the run goes on: the other jobs and stdout still get their say."""
    try:
        _write_result(workdir, outcome)
    except OSError as error:
        problem = f"its result file could not be written in {workdir}: {error.strerror or error}"
        outcome.status = "failed"
        outcome.error = f"{outcome.error}; {problem}" if outcome.error else problem
        log.error("job %d (%s): %s", outcome.index, outcome.label, problem)


def _read_plan(plan_path: Path) -> Any:
    try:
        with open(plan_path, "rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as error:
        raise ValueError(f"cannot read plan {plan_path}: {error.strerror}") from None
    if len(raw) > MAX_PLAN_BYTES:
        raise ValueError(f"plan {plan_path} is larger than {MAX_PLAN_BYTES // MiB} MiB")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"plan {plan_path} is not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"plan {plan_path} is nested too deeply to read") from None


def _build_runner(args: argparse.Namespace, credentials: Credentials) -> JobRunner:
    session = boto3.session.Session(
        aws_access_key_id=credentials.aws_access_key_id,
        aws_secret_access_key=credentials.aws_secret_access_key,
        aws_session_token=credentials.aws_session_token,
        region_name=credentials.aws_region or DEFAULT_AWS_REGION,
    )
    s3 = session.client(
        "s3",
        endpoint_url=credentials.s3_endpoint_url,
        config=Config(
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=args.download_workers + 2,
            connect_timeout=10,
            read_timeout=120,
        ),
    )
    downloader = S3Downloader(
        s3,
        part_size=args.part_size,
        workers=args.download_workers,
        progress_interval=args.progress_interval,
    )
    tokens = AapTokenSource(credentials.aap_url, credentials.aap_username, credentials.aap_password)
    return JobRunner(
        downloader,
        tokens,
        chunk_size=args.chunk_size,
        threads=args.threads,
        progress_interval=args.progress_interval,
    )


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM end the current job as failed, so its result file is still written.

    Only the first signal interrupts: LSF's bkill sends SIGINT and SIGTERM back to back, and a
    second exception would break off the writing of the result the first one started.
    """
    received: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    previous = {number: signal.signal(number, interrupt) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _configure_logging() -> None:
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class RedactSecrets(logging.Filter):
    """Last line of defence: a secret or a JWT that slips into a message, or into the traceback
    logged with it, is masked."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 4]

    def mask(self, text: str) -> str:
        masked = JWT.sub("***", text)
        for secret in self._secrets:
            masked = masked.replace(secret, "***")
        return masked

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # what the formatter would append, masked
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


_TRACEBACKS = logging.Formatter()
# The result JSON (stdout and result-<n>.json) carries error texts too: JWTs are masked from the
# start, the credentials' secrets once they are known.
_result_redaction = RedactSecrets([])


def _redact_in_logs(credentials: Credentials) -> None:
    global _result_redaction
    _result_redaction = RedactSecrets(credentials.secrets())
    for handler in log.handlers:
        handler.addFilter(_result_redaction)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return _result_redaction.mask(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _refuse(message: str) -> int:
    print(f"hca-archive run-job: error: {_result_redaction.mask(message)}", file=sys.stderr)
    return EXIT_NOT_RUN
