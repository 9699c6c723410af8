"""``bjobs``: the default, ``-o`` (with ``-noheader`` or ``-json``) and ``-l`` formats.

Job ids select jobs in any state; ``-J NAME`` (``*`` wildcards) and no selection show unfinished
jobs, all recent ones with ``-a``. Jobs finished more than CLEAN_PERIOD ago are gone. Unknown ids
are reported as ``Job <N> is not found``; the exit status is 255 then only when
``LSB_BJOBS_CONSISTENT_EXIT_CODE=Y``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field

from hca_archive.sandbox.lsf.state import Job, StateDir

_FIELDS = ("jobid", "stat", "exit_code", "job_name", "queue", "user", "submit_time")
_DEFAULT_FORMAT = "jobid user stat queue job_name submit_time"


@dataclass
class _Request:
    all_states: bool = False
    noheader: bool = False
    json: bool = False
    long: bool = False
    fields: tuple[str, ...] = ()
    name: str | None = None
    ids: list[str] = field(default_factory=list)


class _Usage(Exception):
    pass


def bjobs(state: StateDir, args: list[str]) -> int:
    try:
        request = _parse(args)
    except _Usage as error:
        print(error, file=sys.stderr)
        return 255
    clean_period = state.settings().clean_period
    not_found: list[str] = []
    if request.ids:
        jobs = []
        for job_id in request.ids:
            job = state.visible_job(int(job_id), clean_period)
            if job is None:
                not_found.append(job_id)
            else:
                jobs.append(job)
    else:
        jobs = [
            job
            for job in state.jobs(clean_period)
            if (request.all_states or not job.finished)
            and (request.name is None or _name_matches(request.name, job.submission["name"]))
        ]
        if request.name is not None and not jobs:
            not_found.append(request.name)
    _print(request, jobs, not_found)
    consistent = os.environ.get("LSB_BJOBS_CONSISTENT_EXIT_CODE", "").upper() == "Y"
    return 255 if not_found and consistent else 0


def _parse(args: list[str]) -> _Request:
    request = _Request()
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in ("-o", "-J"):
            if position + 1 >= len(args):
                raise _Usage(f"{arg}: option requires an argument")
            value = args[position + 1]
            position += 1
            if arg == "-J":
                request.name = value
            else:
                request.fields = _fields(value)
        elif arg == "-a":
            request.all_states = True
        elif arg == "-noheader":
            request.noheader = True
        elif arg == "-json":
            request.json = True
        elif arg == "-l":
            request.long = True
        elif arg == "-w":
            pass
        elif arg.isdigit():
            request.ids.append(arg)
        else:
            raise _Usage(f"{arg}: Illegal option or job ID")
        position += 1
    if request.json and not request.fields:
        raise _Usage("-json: The -json option must be used with the -o option.")
    return request


def _fields(spec: str) -> tuple[str, ...]:
    names = tuple(word.split(":")[0].lower() for word in spec.split())
    for name in names:
        if name not in _FIELDS:
            raise _Usage(f"{name}: Illegal field name in -o")
    return names


def _name_matches(pattern: str, name: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, name) is not None


def _value(job: Job, name: str) -> str:
    submission = job.submission
    if name == "jobid":
        return str(job.job_id)
    if name == "stat":
        return job.stat
    if name == "exit_code":
        return str(job.exit_code) if job.stat == "EXIT" and job.exit_code is not None else ""
    if name == "job_name":
        return submission["name"]
    if name == "submit_time":
        return time.strftime("%b %d %H:%M", time.localtime(submission["submit_time"]))
    return str(submission[name])


def _print(request: _Request, jobs: list[Job], not_found: list[str]) -> None:
    if request.json:
        records: list[dict[str, str]] = [
            {name.upper(): _value(job, name) for name in request.fields} for job in jobs
        ]
        records += [{"ERROR": f"Job <{job_id}> is not found"} for job_id in not_found]
        document = {"COMMAND": "bjobs", "JOBS": len(records), "RECORDS": records}
        print(json.dumps(document, separators=(",", ":")))
        return
    for missing in not_found:
        print(f"Job <{missing}> is not found", file=sys.stderr)
    if request.long:
        for job in jobs:
            print(_long(job))
        return
    if not jobs:
        if not not_found:
            nothing = "No job found" if request.all_states else "No unfinished job found"
            print(nothing, file=sys.stderr)
        return
    fields = request.fields or tuple(_DEFAULT_FORMAT.split())
    if not request.noheader:
        print(" ".join(name.upper() for name in fields))
    for job in jobs:
        print(" ".join(_value(job, name) or "-" for name in fields))


def _long(job: Job) -> str:
    submission = job.submission
    lines = [
        f"Job <{job.job_id}>, Job Name <{submission['name']}>, User <{submission['user']}>, "
        f"Status <{job.stat}>, Queue <{submission['queue']}>, Command <{submission['command']}>",
        f"{_value(job, 'submit_time')}: Submitted from host <sandbox>, CWD <{submission['cwd']}>, "
        f"Output File <{submission['stdout']}>, Error File <{submission['stderr']}>;",
    ]
    if job.stat == "EXIT" and job.exit_code is not None:
        lines.append(f"Exited with exit code {job.exit_code}.")
    elif job.stat == "DONE":
        lines.append("Done successfully.")
    return "\n".join(lines) + "\n"
