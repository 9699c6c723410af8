"""The sandbox as a subprocess: started, seeded, inspected and stopped by the demo and the tests.

``SandboxInfo`` runs ``hca-archive sandbox start`` in a state dir and exposes the endpoints of
``endpoints.json`` as attributes, plus helpers to seed, read the summary, set faults and restart.
``start_sandbox`` is the same as a context manager.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Short delays keep the tests quick; the defaults of the command are closer to the real service.
FAST_OPTIONS = ("--plan-delay", "0.3", "--process-delay", "0.2")


class SandboxInfo:
    """A running sandbox: its ``endpoints.json`` values as attributes, and admin helpers."""

    archiver_url: str
    ingest_url: str
    dsp_url: str
    aap_url: str
    s3_endpoint_url: str
    admin_url: str
    bucket: str
    archiver_api_key: str
    aap_username: str
    aap_password: str
    aws_access_key_id: str
    aws_secret_access_key: str

    def __init__(self, state_dir: Path, options: tuple[str, ...] = FAST_OPTIONS) -> None:
        self.state_dir = state_dir
        self.options = options
        self.log_path = state_dir / "sandbox.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        endpoints_path = self.state_dir / "endpoints.json"
        endpoints_path.unlink(missing_ok=True)
        command = [sys.executable, "-m", "hca_archive.cli", "sandbox", "start"]
        command += ["--state-dir", str(self.state_dir), *self.options]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not endpoints_path.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start; log:\n{self._log_tail()}")
            time.sleep(0.05)
        self.endpoints: dict[str, str] = json.loads(endpoints_path.read_text())
        for key, value in self.endpoints.items():
            setattr(self, key, value)

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def restart(self) -> None:
        """Stop and start again on the same state dir (faults set at runtime are gone)."""
        self.stop()
        self.start()

    def seed(self, count: int = 1, jobs: list[str] | None = None, reads: int = 200) -> list[str]:
        """Seed ``count`` ingest submissions in state Archiving; returns their uuids."""
        body: dict[str, Any] = {"count": count, "reads": reads}
        if jobs is not None:
            body["jobs"] = jobs
        return self._admin("POST", "/seed", body)["submissions"]

    def summary(self) -> dict[str, Any]:
        return self._admin("GET", "/summary")

    def submission_summary(self, submission_uuid: str) -> dict[str, Any]:
        matches = [s for s in self.summary()["submissions"] if s["uuid"] == submission_uuid]
        if not matches:
            raise KeyError(f"sandbox has no ingest submission {submission_uuid}")
        return matches[0]

    def set_faults(self, service: str, **knobs: Any) -> dict[str, Any]:
        return self._admin("PUT", f"/faults/{service}", knobs)

    def clear_faults(self) -> None:
        self._admin("DELETE", "/faults")

    def replace_plan(self, submission_uuid: str, jobs: Any) -> None:
        """Serve ``jobs`` as the submission's upload plan, now and in records built later."""
        self._admin("PUT", f"/submissions/{submission_uuid}/plan", {"jobs": jobs})

    def set_envelope_state(self, submission_uuid: str, state: str) -> None:
        self._admin("PUT", f"/submissions/{submission_uuid}/state", {"state": state})

    def env(self) -> dict[str, str]:
        """The variables a file job reads its credentials and endpoints from."""
        return {
            "HCA_AAP_URL": self.aap_url,
            "HCA_AAP_USERNAME": self.aap_username,
            "HCA_AAP_PASSWORD": self.aap_password,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_ENDPOINT_URL": self.s3_endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "HCA_DSP_URL": self.dsp_url,
        }

    def token(self) -> str:
        """A fresh AAP token for the DSP stand-in."""
        response = requests.get(
            self.aap_url, auth=(self.aap_username, self.aap_password), timeout=10
        )
        response.raise_for_status()
        return response.text

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, self.admin_url + path, json=body, timeout=300)
        if response.status_code != 200:
            raise RuntimeError(
                f"sandbox admin {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    def _log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def start_sandbox(state_dir: Path, *options: str) -> Iterator[SandboxInfo]:
    """A private sandbox with ``options`` added to the fast defaults; stopped on exit."""
    info = SandboxInfo(state_dir, FAST_OPTIONS + options)
    info.start()
    try:
        yield info
    finally:
        info.stop()
