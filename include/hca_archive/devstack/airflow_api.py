"""A small client of Airflow's REST API v2, as a wrangler's script or a test would use it."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests

FINISHED = {"success", "failed"}
READ_ATTEMPTS = 4


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

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if "Authorization" not in self._session.headers:
            self._authenticate()
        response = self._send(method, f"{self.base_url}/api/v2{path}", **kwargs)
        if response.status_code == 401:
            self._authenticate()
            response = self._send(method, f"{self.base_url}/api/v2{path}", **kwargs)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request; reads are tried again when a busy API server is slow to answer."""
        attempts = READ_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._session.request(method, url, timeout=self.timeout, **kwargs)
            except (requests.Timeout, requests.ConnectionError):
                if attempt == attempts:
                    raise
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
        self.json("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None) -> str:
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return self.json("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

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
