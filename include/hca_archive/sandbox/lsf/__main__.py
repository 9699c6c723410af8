"""``python -m hca_archive.sandbox.lsf bsub|bjobs|bkill ARGS`` (``_run ID`` is the job runner)."""

from __future__ import annotations

import sys

from hca_archive.sandbox.lsf.bjobs import bjobs
from hca_archive.sandbox.lsf.bkill import bkill
from hca_archive.sandbox.lsf.bsub import bsub
from hca_archive.sandbox.lsf.runner import run_job
from hca_archive.sandbox.lsf.state import StandInError, StateDir

HANDLERS = {"bsub": bsub, "bjobs": bjobs, "bkill": bkill}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in (*HANDLERS, "_run"):
        names = ",".join(HANDLERS)
        print(f"usage: python -m hca_archive.sandbox.lsf {{{names}}} ARGS", file=sys.stderr)
        return 2
    try:
        state = StateDir.from_environment()
    except StandInError as error:
        print(f"LSF stand-in: {error}", file=sys.stderr)
        return 2
    if argv[0] == "_run":
        run_job(state, int(argv[1]))
        return 0
    state.record_command(argv)
    return HANDLERS[argv[0]](state, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
