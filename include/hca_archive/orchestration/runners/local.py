"""Run file jobs in a subprocess on the Airflow worker."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from hca_archive.orchestration.file_job_results import check_result, label_task, work_key
from hca_archive.orchestration.step_record import recorded_step

KILL_GRACE_SECONDS = 10


def default_work_root() -> Path:
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    return Path(os.environ.get("HCA_ARCHIVE_WORKDIR", airflow_home / "hca-archive-work"))


# What run-job never needs: Airflow's own settings (metadata database URL, Fernet key, JWT and API
# secrets, secrets backend) and every connection and variable given in the environment.
PRIVATE_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__", "_AIRFLOW_")


def job_environment() -> dict[str, str]:
    """The worker's environment without what run-job must not hold."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(PRIVATE_PREFIXES)}


def write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class LocalFileJobOperator(BaseOperator):
    """Runs ``hca-archive run-job`` for a batch of plan jobs and returns its result JSON.

    The subprocess's progress goes to the task log line by line; credentials reach it through a
    0600 file it deletes after reading, never through argv or the environment of a shell.
    """

    template_fields = ("environment",)
    ui_color = "#fdf3e8"

    def __init__(self, *, batch: list[dict[str, Any]], environment: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.environment = environment
        self._process: subprocess.Popen[str] | None = None

    def execute(self, context: Any) -> dict[str, Any]:
        with recorded_step(context) as record:
            label = label_task(context, self.batch)
            workdir = default_work_root() / work_key(context)
            workdir.mkdir(parents=True, exist_ok=True)
            plan_path = workdir / "plan.json"
            plan_path.write_text(json.dumps({"jobs": self.batch}))
            from hca_archive.orchestration.hooks import HcaArchiveHook

            credentials = HcaArchiveHook(self.environment).file_job_credentials()
            result = self._run(workdir, plan_path, credentials)
            check_result(result, self.log, context["ti"])
            record.outcome = f"{label}: {result.get('succeeded', 0)} job(s) archived"
            shutil.rmtree(workdir)  # inputs and BAMs are on DSP now; a failed job keeps them
            return result

    def _run(self, workdir: Path, plan_path: Path, credentials: dict[str, str]) -> dict[str, Any]:
        credentials_path = workdir / f"credentials-{secrets.token_hex(8)}.json"
        write_private(credentials_path, json.dumps(credentials))
        command = [
            sys.executable,
            "-m",
            "hca_archive.cli",
            "run-job",
            "--plan",
            str(plan_path),
            "--workdir",
            str(workdir),
            "--credentials-file",
            str(credentials_path),
            "--delete-credentials-file",
            # two runs' copies of one job, on any worker sharing the work root, take turns
            "--lock-dir",
            str(default_work_root() / "job-locks"),
        ]
        self.log.info("running %s", " ".join(command[2:]))
        try:
            self._process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                env=job_environment(),
            )
            stdout_chunks: list[str] = []
            reader = threading.Thread(
                target=lambda: stdout_chunks.append(self._process.stdout.read()), daemon=True
            )
            reader.start()
            for line in self._process.stderr:
                self.log.info("%s", line.rstrip())
            returncode = self._process.wait()
            reader.join()
        finally:
            credentials_path.unlink(missing_ok=True)
        output = "".join(stdout_chunks).strip()
        try:
            result = json.loads(output)
        except json.JSONDecodeError:
            raise AirflowException(
                f"run-job exited {returncode} without a result JSON: {output[-500:]!r}"
            ) from None
        self.log.info("run-job exited %s", returncode)
        return result

    def on_kill(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.log.warning("task killed: stopping run-job (pid %s)", process.pid)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
