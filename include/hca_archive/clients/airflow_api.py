"""A small client of Airflow's REST API v2, for a wrangler's script, a task or a test.

Transport and retries are ``JsonHttp``'s: reads, and writes that can be told apart from their
repeat, are sent again after no answer or a 5xx. A busy SQLite Airflow needs that: its API
server can leave a request unanswered for as long as SQLite's lock wait (see
``devstack.airflow_standalone``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from hca_archive.http import JsonHttp

FINISHED = {"success", "failed"}
ATTEMPTS = 4
ANSWERED = range(100, 500)  # returned to the caller as they are; 5xx are sent again, then raised


class AirflowApiError(RuntimeError):
    pass


class BearerToken(requests.auth.AuthBase):
    def __init__(self) -> None:
        self.value = ""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.value:
            request.headers["Authorization"] = f"Bearer {self.value}"
        return request


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60) -> None:
        self._credentials = {"username": username, "password": password}
        self._token = BearerToken()
        self._http = JsonHttp(
            base_url, timeout=timeout, retries=ATTEMPTS - 1, backoff=1.0, auth=self._token
        )

    def _authenticate(self) -> None:
        response = self._http.request("POST", "/auth/token", json=self._credentials, ok=ANSWERED)
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"login refused: {response.status_code} {response.text[:200]}")
        self._token.value = response.json()["access_token"]

    def request(
        self, method: str, path: str, resend: bool | None = None, **kwargs: Any
    ) -> requests.Response:
        """Any answer below 500. ``resend``: may it be sent again when no answer comes? Reads
        may; other methods only when the caller says so (they can be told from their repeat)."""
        if not self._token.value:
            self._authenticate()
        idempotent = method == "GET" if resend is None else resend
        options = {"idempotent": idempotent, "ok": ANSWERED, **kwargs}
        response = self._http.request(method, f"/api/v2{path}", **options)
        if response.status_code == 401:
            self._authenticate()
            response = self._http.request(method, f"/api/v2{path}", **options)
        return response

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
        self.json("PATCH", f"/dags/{dag_id}", resend=True, json=unpause)

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None) -> str:
        """Start a run, or find it started: triggering is idempotent by run id.

        The run id is chosen here, so a POST sent again after its answer was lost (a busy SQLite
        Airflow can take a minute) is refused as a conflict and recognised by its conf.
        """
        run_id = run_id or f"manual__{datetime.now(UTC).isoformat()}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        path = f"/dags/{dag_id}/dagRuns"
        response = self.request("POST", path, resend=True, json=body)
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
