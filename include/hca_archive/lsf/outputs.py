"""Parsers for what bsub, bjobs and bkill print (LSF 10.1), errors included."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# PEND, PSUSP, RUN, USUSP, SSUSP, UNKWN, WAIT, PROV, ZOMBI and states we do not know: not
# finished. ZOMBI is a killed job whose host LSF cannot reach: it may still be running there.
FINISHED_STATES = frozenset({"DONE", "EXIT"})

_SUBMITTED = re.compile(r"Job <(\d+)> is submitted to (?:default )?queue <([^>]*)>")
_NOT_FOUND = re.compile(r"Job <([^>]+)> is not found")
_BEING_TERMINATED = re.compile(r"Job <(\d+)> is being terminated")
_ALREADY_FINISHED = re.compile(r"Job <(\d+)>: Job has already finished")
_NO_MATCHING = re.compile(r"Job <(\d+)>: No matching job found")
_NO_JOBS = re.compile(r"No (?:unfinished |matching )?job found")

# Exit codes of a shell that could not run the command, and from signals (128 + signal number).
_KNOWN_EXITS = {
    126: "the job command is not executable (check the command prefix)",
    127: "the job command was not found (check the command prefix or image)",
    130: "interrupted by SIGINT (bkill?)",
    137: "killed by SIGKILL (TERM_MEMLIMIT? bkill?)",
    140: "killed by SIGUSR2 (TERM_RUNLIMIT?)",
    143: "terminated by SIGTERM (bkill? TERM_RUNLIMIT?)",
    139: "segmentation fault",
}


class LsfCommandError(RuntimeError):
    """An LSF command failed; the message has the command's own error text."""


@dataclass(frozen=True)
class JobState:
    job_id: str
    stat: str
    exit_code: int | None
    name: str | None = None

    @property
    def finished(self) -> bool:
        return self.stat in FINISHED_STATES

    @property
    def active(self) -> bool:
        """May still run: a new job must not start in its work directory."""
        return not self.finished


@dataclass(frozen=True)
class Submission:
    job_id: str
    queue: str


@dataclass(frozen=True)
class BjobsAnswer:
    """Jobs LSF reported, and the ids or names it says it does not know."""

    jobs: tuple[JobState, ...]
    not_found: frozenset[str]

    def by_id(self) -> dict[str, JobState]:
        return {job.job_id: job for job in self.jobs}


def parse_bsub(stdout: str, stderr: str, returncode: int) -> Submission:
    match = _SUBMITTED.search(stdout)
    if returncode != 0 or not match:
        detail = (stderr.strip() or stdout.strip() or "no output").splitlines()[-1]
        raise LsfCommandError(f"bsub failed (exit {returncode}): {detail}")
    return Submission(job_id=match.group(1), queue=match.group(2))


def parse_bjobs_json(stdout: str, stderr: str, returncode: int) -> BjobsAnswer:
    """``bjobs -o "jobid stat exit_code job_name" -json``; unknown jobs whether LSF reports them
    in ``RECORDS[].ERROR`` or on stderr, with exit 0 or 255 (LSB_BJOBS_CONSISTENT_EXIT_CODE)."""
    not_found = set(_NOT_FOUND.findall(stderr))
    jobs: list[JobState] = []
    if stdout.strip():
        try:
            document = json.loads(stdout)
            records = document["RECORDS"]
        except (ValueError, KeyError, TypeError):
            raise LsfCommandError(f"bjobs printed no JSON: {_first_line(stdout)}") from None
        for record in records:
            error = record.get("ERROR")
            if error:
                found = _NOT_FOUND.search(error)
                if not found:
                    raise LsfCommandError(f"bjobs: {error}")
                not_found.add(found.group(1))
                continue
            jobs.append(_job_state(record))
    _check_bjobs_exit(returncode, stderr, not_found)
    return BjobsAnswer(tuple(jobs), frozenset(not_found))


def parse_bkill(stdout: str, stderr: str) -> dict[str, str]:
    """Per job id: ``terminating``, ``finished`` or ``not found``."""
    text = f"{stdout}\n{stderr}"
    outcome = dict.fromkeys(_BEING_TERMINATED.findall(text), "terminating")
    outcome.update(dict.fromkeys(_ALREADY_FINISHED.findall(text), "finished"))
    outcome.update(dict.fromkeys(_NOT_FOUND.findall(text), "not found"))
    outcome.update(dict.fromkeys(_NO_MATCHING.findall(text), "not found"))
    return outcome


def describe_exit(job_id: str, exit_code: int | None) -> str:
    """One line for a task failure, e.g. ``LSF job 12345 EXIT code 137: killed by SIGKILL ...``."""
    if exit_code is None:
        return f"LSF job {job_id} EXIT without an exit code: it failed to start or was killed"
    reason = _KNOWN_EXITS.get(exit_code, "the job command failed (see its stderr and result)")
    return f"LSF job {job_id} EXIT code {exit_code}: {reason}"


def _job_state(record: dict) -> JobState:
    try:
        job_id = str(record["JOBID"])
        stat = str(record["STAT"])
    except KeyError as missing:
        raise LsfCommandError(f"bjobs record without {missing}: {record}") from None
    exit_text = str(record.get("EXIT_CODE") or "").strip()
    exit_code = int(exit_text) if exit_text.isdigit() else None
    name = record.get("JOB_NAME")
    return JobState(job_id, stat, exit_code, name if name not in (None, "", "-") else None)


def _check_bjobs_exit(returncode: int, stderr: str, not_found: set[str]) -> None:
    if returncode == 0 or (returncode == 255 and (not_found or _NO_JOBS.search(stderr))):
        return
    raise LsfCommandError(f"bjobs failed (exit {returncode}): {_first_line(stderr)}")


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else "no output"
