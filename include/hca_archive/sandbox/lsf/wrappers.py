"""``bsub``/``bjobs``/``bkill`` scripts that run the stand-in, for a PATH on the "cluster"."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import hca_archive
from hca_archive.sandbox.lsf.state import STATE_DIR_VARIABLE

COMMANDS = ("bsub", "bjobs", "bkill")


def write_wrappers(bin_dir: Path, state_dir: Path, python: str = sys.executable) -> None:
    """Write executable wrappers into ``bin_dir`` that use ``state_dir`` and ``python``.

    They put this very ``hca_archive`` first on PYTHONPATH, so the stand-in does not depend on
    how (or whether, at this moment) the package is installed for ``python``.
    """
    source_root = Path(hca_archive.__file__).resolve().parents[1]
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for command in COMMANDS:
        wrapper = bin_dir / command
        wrapper.write_text(
            "#!/bin/sh\n"
            f"export {STATE_DIR_VARIABLE}={shlex.quote(str(state_dir))}\n"
            f'export PYTHONPATH={shlex.quote(str(source_root))}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
            f'exec {shlex.quote(python)} -m hca_archive.sandbox.lsf {command} "$@"\n'
        )
        wrapper.chmod(0o755)
