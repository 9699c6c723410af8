"""Argument vectors for bsub, bjobs and bkill, and the job command they submit.

Every argument is a path or value we generate; nothing from an upload plan (names, URLs) and
no secret is ever on a command line, which every cluster user can read with ``bjobs -l``.
Run a vector remotely as ``shlex.join(argv)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hca_archive.lsf.names import JobPaths
from hca_archive.lsf.resources import LsfSettings, shell_safe

STATUS_FIELDS = "jobid stat exit_code job_name"


def job_command(prefix: Sequence[str], paths: JobPaths, threads: int) -> list[str]:
    """``<prefix> run-job`` on every job of the staged plan, one after the other, converting with
    the cores LSF gives it; the job deletes its credentials file once read, and waits for another
    run's copy of a job on the work root's shared lock directory."""
    command = [
        *prefix,
        "run-job",
        "--plan",
        paths.plan,
        "--workdir",
        paths.directory,
        "--credentials-file",
        paths.credentials,
        "--delete-credentials-file",
        "--lock-dir",
        paths.lock_dir,
        "--threads",
        str(threads),
    ]
    return [shell_safe(word, "job command word") for word in command]


def bsub_argv(name: str, settings: LsfSettings, paths: JobPaths) -> list[str]:
    """``bsub -J NAME -M MB -n CORES [-q Q] [-W HH:MM] -o OUT -e ERR -R rusage[mem=MB] CMD...``.

    ``-M`` and ``rusage[mem=]`` are in MB, as on clusters with ``LSF_UNIT_FOR_LIMITS=MB``.
    """
    memory = str(settings.memory_mb)
    argv = ["bsub", "-J", shell_safe(name, "LSF job name"), "-M", memory]
    argv += ["-n", str(settings.cores)]
    if settings.queue:
        argv += ["-q", settings.queue]
    if settings.wall_time:
        argv += ["-W", settings.wall_time]
    argv += ["-o", paths.stdout, "-e", paths.stderr, "-R", f"rusage[mem={memory}]"]
    return argv + job_command(settings.command_prefix, paths, settings.cores)


def bjobs_status_argv(job_ids: Iterable[str | int]) -> list[str]:
    """One query for the state of many jobs: ``bjobs -o FIELDS -json ID...``."""
    ids = [_job_id(job_id) for job_id in job_ids]
    if not ids:
        raise ValueError("bjobs needs at least one job id")
    return ["bjobs", "-o", STATUS_FIELDS, "-json", *ids]


def bjobs_by_name_argv(name: str) -> list[str]:
    """All jobs (finished ones too, until LSF cleans them) with exactly this name."""
    return ["bjobs", "-a", "-J", shell_safe(name, "LSF job name"), "-o", STATUS_FIELDS, "-json"]


def bkill_argv(job_ids: Iterable[str | int]) -> list[str]:
    ids = [_job_id(job_id) for job_id in job_ids]
    if not ids:
        raise ValueError("bkill needs at least one job id")
    return ["bkill", *ids]


def _job_id(job_id: str | int) -> str:
    text = str(job_id)
    if not text.isdigit():
        raise ValueError(f"LSF job id must be a number, got {job_id!r}")
    return text
