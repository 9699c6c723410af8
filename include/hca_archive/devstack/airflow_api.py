"""A small client of Airflow's REST API v2, as a wrangler's script or a test would use it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

FINISHED = {"success", "failed"}
ATTEMPTS = 4


class AirflowApiError(RuntimeError):
    pass


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self.timeout = timeout
        self._session = requests.Session()

    def _authenticate(self) -> None:
        response = self._session.post(
            f"{self.base_url}/auth/token", json=self._credentials, timeout=self.timeout
        )
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"login refused: {response.status_code} {response.text[:200]}")
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(
        self, method: str, path: str, attempts: int | None = None, **kwargs: Any
    ) -> requests.Response:
        """``attempts``: how often to send it while no answer comes; reads default to ATTEMPTS,
        other methods to once (only a caller that can recognise a repeat should send it again)."""
        if "Authorization" not in self._session.headers:
            self._authenticate()
        attempts = attempts or (ATTEMPTS if method == "GET" else 1)
        url = f"{self.base_url}/api/v2{path}"
        response = self._send(method, url, attempts, **kwargs)
        if response.status_code == 401:
            self._authenticate()
            response = self._send(method, url, attempts, **kwargs)
        return response

    def _send(self, method: str, url: str, attempts: int, **kwargs: Any) -> requests.Response:
        """Send again after no answer or a server error ("database is locked" under load)."""
        for attempt in range(1, attempts + 1):
            try:
                response = self._session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.Timeout, requests.ConnectionError):
                if attempt == attempts:
                    raise
            else:
                if response.status_code < 500 or attempt == attempts:
                    return response
            time.sleep(attempt)
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.ok:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the DAG processor has parsed ``dag_id``, then make sure it is unpaused."""
        deadline = time.monotonic() + timeout
        while self.request("GET", f"/dags/{dag_id}").status_code != 200:
            if time.monotonic() > deadline:
                raise AirflowApiError(f"DAG {dag_id} did not appear within {timeout}s")
            time.sleep(1)
        unpause = {"is_paused": False}  # idempotent: safe to send again
        self.json("PATCH", f"/dags/{dag_id}", attempts=ATTEMPTS, json=unpause)

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None) -> str:
        """Start a run, or find it started: triggering is idempotent by run id.

        The run id is chosen here, so a POST sent again after its answer was lost (a busy SQLite
        Airflow can take a minute) is refused as a conflict and recognised by its conf.
        """
        run_id = run_id or f"manual__{datetime.now(UTC).isoformat()}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        path = f"/dags/{dag_id}/dagRuns"
        response = self.request("POST", path, attempts=ATTEMPTS, json=body)
        if response.status_code == 409 and self.run(dag_id, run_id).get("conf") == conf:
            return run_id
        if not response.ok:
            raise AirflowApiError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response.json()["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.json("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (run := self.run(dag_id, run_id))["state"] not in FINISHED:
            if time.monotonic() > deadline:
                raise AirflowApiError(f"run {run_id} still {run['state']} after {timeout}s")
            time.sleep(2)
        return run

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return self.json("GET", path, params={"limit": 1000})["task_instances"]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
            f"/xcomEntries/{key}"
        )
        return self.json("GET", path, params={"deserialize": True})["value"]
