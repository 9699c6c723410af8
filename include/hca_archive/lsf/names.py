"""Deterministic LSF job names and cluster work paths for one mapped task.

The name is the key that lets a retry or a restarted worker find the job it already submitted,
so it depends only on the DAG id, the task id, the run id and the map index: two LSF tasks of
one run never take each other's job or directory for their own.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass

MAX_JOB_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# Characters safe in a POSIX path we build and in a shell word (LSF re-joins a job's arguments).
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_./+-]*$")


def _slug(text: str, limit: int) -> str:
    return _UNSAFE.sub("_", text).strip("._-")[:limit] or "x"


def _digest(*parts: object, length: int = 10) -> str:
    joined = "\0".join(str(part) for part in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:length]


def job_name(dag_id: str, task_id: str, run_id: str, map_index: int) -> str:
    """``hca-<dag>-<task>-<run>-<index>-<hash>``: LSF-safe characters, at most ``MAX_JOB_NAME``.

    The hash covers the unabridged values, so two tasks or runs whose slugs collide still differ;
    what is cut to fit is the slugs, never the hash.
    """
    index = str(map_index) if map_index >= 0 else "x"
    suffix = f"-{index}-{_digest(dag_id, task_id, run_id, map_index)}"
    slugs = f"hca-{_slug(dag_id, 24)}-{_slug(task_id, 20)}-{_slug(run_id, 40)}"
    return slugs[: MAX_JOB_NAME - len(suffix)] + suffix


@dataclass(frozen=True)
class JobPaths:
    """Files of one job in its own directory under the run's work directory on the cluster."""

    directory: str

    @property
    def lock_dir(self) -> str:
        """``<work_root>/job-locks``, shared by every run: two runs' copies of one plan job take
        turns there."""
        return posixpath.join(posixpath.dirname(posixpath.dirname(self.directory)), "job-locks")

    @property
    def plan(self) -> str:
        return posixpath.join(self.directory, "plan.json")

    @property
    def credentials(self) -> str:
        return posixpath.join(self.directory, "credentials.json")

    @property
    def stdout(self) -> str:
        return posixpath.join(self.directory, "lsf.out")

    @property
    def stderr(self) -> str:
        return posixpath.join(self.directory, "lsf.err")

    def scratch(self, index: int) -> str:
        """Where run-job keeps job ``index``'s inputs and outputs (``filejob.workdir.JobDirs``)."""
        return posixpath.join(self.directory, f"job-{int(index)}")

    def result(self, index: int) -> str:
        """The durable marker ``hca-archive run-job`` writes for the staged plan's job ``index``."""
        return posixpath.join(self.directory, f"result-{int(index)}.json")


def job_paths(work_root: str, dag_id: str, task_id: str, run_id: str, map_index: int) -> JobPaths:
    """``<work_root>/<dag>-<run>-<hash>/<task>-<hash>-job-<index>``: one directory per run, one
    per task's job in it."""
    root = posixpath.normpath(work_root)
    if not _SAFE_PATH.match(root):
        raise ValueError(
            f"LSF work root {work_root!r} must be an absolute path of letters, digits and _./+-"
        )
    run_dir = f"{_slug(dag_id, 40)}-{_slug(run_id, 60)}-{_digest(dag_id, run_id)}"
    index = str(map_index) if map_index >= 0 else "x"
    task_dir = f"{_slug(task_id, 40)}-{_digest(task_id, length=6)}-job-{index}"
    return JobPaths(posixpath.join(root, run_dir, task_dir))
