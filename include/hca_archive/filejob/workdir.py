"""Local paths of one job, built only from single validated name components under the workdir.

Names come from the upload plan, which is untrusted: even after the plan's own validation,
every path is checked to stay inside the work directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class UnsafePathError(ValueError):
    """A name from the plan would escape the work directory."""


def child(base: Path, name: str) -> Path:
    """``base / name`` for a plain file name; refuses separators, ``..`` and the like."""
    if (
        not name
        or name in {".", ".."}
        or "/" in name
        or "\\" in name
        or "\0" in name
        or name != name.strip()
    ):
        raise UnsafePathError(f"unsafe file name {name!r}")
    resolved_base = base.resolve()
    path = (resolved_base / name).resolve()
    if path.parent != resolved_base:
        raise UnsafePathError(f"file name {name!r} leaves {resolved_base}")
    return path


@dataclass(frozen=True)
class JobDirs:
    """``<workdir>/job-<index>/{inputs,output,uploads}`` and the job's result file."""

    root: Path
    inputs: Path
    output: Path
    uploads: Path
    result: Path

    @classmethod
    def create(cls, workdir: Path, index: int) -> JobDirs:
        workdir = workdir.resolve()
        root = child(workdir, f"job-{int(index)}")
        dirs = cls(
            root=root,
            inputs=root / "inputs",
            output=root / "output",
            uploads=root / "uploads",
            result=child(workdir, f"result-{int(index)}.json"),
        )
        for directory in (dirs.inputs, dirs.output, dirs.uploads):
            directory.mkdir(parents=True, exist_ok=True)
        return dirs


def write_json_atomically(path: Path, document: Any) -> None:
    """Write ``document`` so that readers see either the old file or the whole new one."""
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The JSON document at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def exclusive(
    lock_path: Path, on_busy: Callable[[str], None] | None = None, holder: str = ""
) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path``; yields whether held.

    When another process holds it: yields False at once, or, given ``on_busy``, calls it with
    what that process wrote in the file (its ``holder``) and waits for the lock. Two copies of
    one job (an LSF retry while the first still runs) must not write the same partial files.
    The file is private to its owner. A lock file that cannot be opened, or a file system
    without ``flock`` support, gives no protection, only a warning: the job still runs and
    reports.
    """
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        log.warning("cannot lock %s (%s); running without a lock", lock_path, error.strerror)
        yield True
        return
    with os.fdopen(descriptor, "r+", encoding="utf-8", errors="replace") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                log.warning(
                    "cannot lock %s (%s); running without a lock", lock_path, error.strerror
                )
            elif on_busy is None:
                yield False
                return
            else:
                on_busy(handle.read(1000).strip())
                fcntl.flock(handle, fcntl.LOCK_EX)
        if holder:
            with contextlib.suppress(OSError):  # who holds it is for the log, not worth failing
                handle.seek(0)
                handle.truncate()
                handle.write(holder)
                handle.flush()
        yield True
