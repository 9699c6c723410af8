"""``bsub``: record the job, start its runner detached, answer like LSF."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from hca_archive.sandbox.lsf.state import StateDir

# Options that take a value; flags without one are not needed by the runner.
_VALUE_OPTIONS = {"-J", "-M", "-n", "-q", "-W", "-o", "-e", "-oo", "-eo", "-R", "-cwd", "-P"}
_WALL_TIME = re.compile(r"^(?:\d+:)?\d+$")


class SubmitError(Exception):
    """LSF refuses the submission; the message is what bsub prints on stderr."""


def bsub(state: StateDir, args: list[str]) -> int:
    try:
        options, command = _parse(args)
        settings = state.settings()
        queue = options.get("-q")
        if queue is not None and queue not in settings.queues:
            raise SubmitError(f"{queue}: No such queue. Job not submitted.")
    except SubmitError as refusal:
        print(refusal, file=sys.stderr)
        return 255
    job_id = state.new_job_id()
    state.write_submission(
        {
            "id": job_id,
            "name": options.get("-J", command[0]),
            "queue": queue or settings.default_queue,
            "user": os.environ.get("USER", "root"),
            "command": " ".join(command),
            "cwd": options.get("-cwd", os.getcwd()),
            "stdout": options.get("-o") or options.get("-oo"),
            "stderr": options.get("-e") or options.get("-eo"),
            "memory_mb": options.get("-M"),
            "cores": options.get("-n", "1"),
            "wall_time": options.get("-W"),
            "resources": options.get("-R"),
            "submit_time": time.time(),
            "environment": dict(os.environ),
        }
    )
    subprocess.Popen(
        [sys.executable, "-m", "hca_archive.sandbox.lsf", "_run", str(job_id)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    where = f"queue <{queue}>" if queue else f"default queue <{settings.default_queue}>"
    print(f"Job <{job_id}> is submitted to {where}.")
    return 0


def _parse(args: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    position = 0
    while position < len(args) and args[position].startswith("-"):
        option = args[position]
        if option not in _VALUE_OPTIONS:
            raise SubmitError(f"{option}: Illegal option. Job not submitted.")
        if position + 1 >= len(args):
            raise SubmitError(f"{option}: Option requires an argument. Job not submitted.")
        options[option] = args[position + 1]
        position += 2
    command = args[position:]
    if not command:
        raise SubmitError("No command specified. Job not submitted.")
    for option in ("-M", "-n"):
        if option in options and not options[option].isdigit():
            raise SubmitError(f"{options[option]}: Bad argument for {option}. Job not submitted.")
    if "-W" in options and not _WALL_TIME.match(options["-W"]):
        raise SubmitError(f"{options['-W']}: Bad RUNLIMIT specification. Job not submitted.")
    return options, command
