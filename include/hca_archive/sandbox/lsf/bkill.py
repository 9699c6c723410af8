"""``bkill ID...``: ask each job's runner to stop it; answer like LSF."""

from __future__ import annotations

import sys

from hca_archive.sandbox.lsf.state import StateDir


def bkill(state: StateDir, args: list[str]) -> int:
    if not args or any(not arg.isdigit() for arg in args):
        print("Usage: bkill job_ID ... (the stand-in takes job ids only)", file=sys.stderr)
        return 255
    clean_period = state.settings().clean_period
    failed = False
    for arg in args:
        job = state.visible_job(int(arg), clean_period)
        if job is None:
            print(f"Job <{arg}>: No matching job found", file=sys.stderr)
            failed = True
        elif job.finished:
            print(f"Job <{arg}>: Job has already finished", file=sys.stderr)
            failed = True
        else:
            state.request_kill(job.job_id)
            print(f"Job <{arg}> is being terminated")
    return 255 if failed else 0
