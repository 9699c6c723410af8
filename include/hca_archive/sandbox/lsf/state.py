"""The stand-in's state directory: settings, job records, job ids and the command record.

Layout: ``settings.json`` (optional), ``next_id``, ``commands.jsonl``, and per job
``jobs/<id>.json`` (the submission), ``jobs/<id>.status.json`` (written by the runner) and
``jobs/<id>.kill`` (a bkill request the runner acts on).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR_VARIABLE = "HCA_LSF_STATE_DIR"
FIRST_JOB_ID = 100
# name -> (environment variable, default); the environment wins over settings.json.
SETTINGS: dict[str, tuple[str, Any]] = {
    "queues": ("HCA_LSF_QUEUES", "normal,long"),
    "clean_period": ("HCA_LSF_CLEAN_PERIOD", 3600.0),
    "pend_seconds": ("HCA_LSF_PEND_SECONDS", 0.3),
    "kill_grace": ("HCA_LSF_KILL_GRACE", 1.0),
}


class StandInError(Exception):
    """Bad use of the stand-in itself (not an LSF answer)."""


@dataclass(frozen=True)
class Settings:
    queues: tuple[str, ...]
    clean_period: float
    pend_seconds: float
    kill_grace: float

    @property
    def default_queue(self) -> str:
        return self.queues[0]


@dataclass
class Job:
    """A submitted job and what its runner has recorded so far."""

    submission: dict[str, Any]
    status: dict[str, Any]

    @property
    def job_id(self) -> int:
        return int(self.submission["id"])

    @property
    def stat(self) -> str:
        return str(self.status.get("stat", "PEND"))

    @property
    def exit_code(self) -> int | None:
        return self.status.get("exit_code")

    @property
    def finished(self) -> bool:
        return self.stat in ("DONE", "EXIT")


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.jobs_dir = root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_environment(cls) -> StateDir:
        value = os.environ.get(STATE_DIR_VARIABLE)
        if not value:
            raise StandInError(f"{STATE_DIR_VARIABLE} is not set")
        return cls(Path(value))

    def settings(self) -> Settings:
        path = self.root / "settings.json"
        stored = json.loads(path.read_text()) if path.exists() else {}
        values: dict[str, Any] = {}
        for name, (variable, default) in SETTINGS.items():
            values[name] = os.environ.get(variable) or stored.get(name, default)
        queues = values["queues"]
        if isinstance(queues, str):
            queues = [queue.strip() for queue in queues.split(",") if queue.strip()]
        return Settings(
            queues=tuple(queues),
            clean_period=float(values["clean_period"]),
            pend_seconds=float(values["pend_seconds"]),
            kill_grace=float(values["kill_grace"]),
        )

    def record_command(self, argv: list[str]) -> None:
        line = json.dumps({"time": time.time(), "argv": argv}) + "\n"
        with self._locked("commands.lock"), (self.root / "commands.jsonl").open("a") as record:
            record.write(line)

    def new_job_id(self) -> int:
        counter = self.root / "next_id"
        with self._locked("next_id.lock"):
            job_id = int(counter.read_text()) if counter.exists() else FIRST_JOB_ID
            counter.write_text(str(job_id + 1))
        return job_id

    def write_submission(self, submission: dict[str, Any]) -> None:
        self._write_json(self.jobs_dir / f"{submission['id']}.json", submission)

    def write_status(self, job_id: int, status: dict[str, Any]) -> None:
        self._write_json(self.jobs_dir / f"{job_id}.status.json", status)

    def request_kill(self, job_id: int) -> None:
        (self.jobs_dir / f"{job_id}.kill").write_text(str(time.time()))

    def kill_requested(self, job_id: int) -> bool:
        return (self.jobs_dir / f"{job_id}.kill").exists()

    def job(self, job_id: int) -> Job | None:
        path = self.jobs_dir / f"{job_id}.json"
        if not path.exists():
            return None
        status_path = self.jobs_dir / f"{job_id}.status.json"
        status = json.loads(status_path.read_text()) if status_path.exists() else {}
        return Job(json.loads(path.read_text()), status)

    def visible_job(self, job_id: int, clean_period: float) -> Job | None:
        """The job unless LSF would have cleaned it (finished more than CLEAN_PERIOD ago)."""
        job = self.job(job_id)
        if job is None or (job.finished and time.time() - job.status["end_time"] > clean_period):
            return None
        return job

    def jobs(self, clean_period: float) -> Iterator[Job]:
        ids = sorted(int(path.stem) for path in self.jobs_dir.glob("*.json") if path.stem.isdigit())
        for job_id in ids:
            job = self.visible_job(job_id, clean_period)
            if job is not None:
                yield job

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        with (self.root / name).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _write_json(path: Path, document: dict[str, Any]) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(document))
        temporary.replace(path)
