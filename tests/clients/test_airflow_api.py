"""The REST client's trigger against a stub Airflow that loses answers or fails under load."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from hca_archive.clients.airflow_api import AirflowApi, AirflowApiError
from hca_archive.http import ServiceError

CLIENT_TIMEOUT = 0.5


@dataclass
class StubAirflow:
    """Keeps dag runs by id; ``slow_posts``/``failing_posts`` first POSTs answer late or 500."""

    url: str = ""
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: int = 0
    slow_posts: int = 0
    failing_posts: int = 0
    patches: list[dict[str, Any]] = field(default_factory=list)
    slow_patches: int = 0


def _handler(stub: StubAirflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)  # unless the client stopped waiting

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/auth/token":
                return self._answer(201, {"access_token": "token"})
            stub.posts += 1
            if stub.posts <= stub.failing_posts:
                return self._answer(500, {"detail": "Database error"})
            run_id = body["dag_run_id"]
            if run_id in stub.runs:
                return self._answer(409, {"detail": f"DAG run {run_id} already exists"})
            stub.runs[run_id] = {"dag_run_id": run_id, "conf": body["conf"], "state": "queued"}
            if stub.posts <= stub.slow_posts:
                time.sleep(CLIENT_TIMEOUT * 3)  # committed, but the answer comes too late
            self._answer(200, stub.runs[run_id])

        def do_PATCH(self) -> None:
            stub.patches.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            if len(stub.patches) <= stub.slow_patches:
                time.sleep(CLIENT_TIMEOUT * 3)
            self._answer(200, {})

        def do_GET(self) -> None:
            if "/dagRuns/" not in self.path:
                return self._answer(200, {})  # any DAG is parsed
            run_id = unquote(self.path.rsplit("/", 1)[-1])
            if run_id in stub.runs:
                return self._answer(200, stub.runs[run_id])
            self._answer(404, {"detail": "not found"})

    return Handler


@pytest.fixture
def stub() -> Iterator[StubAirflow]:
    state = StubAirflow()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def client(stub: StubAirflow) -> AirflowApi:
    return AirflowApi(stub.url, "admin", "secret", timeout=CLIENT_TIMEOUT)


def test_a_trigger_whose_answer_was_lost_starts_one_run(stub: StubAirflow) -> None:
    stub.slow_posts = 1
    run_id = client(stub).trigger("archive_submission", {"submission_uuid": "u-1"})
    assert stub.posts == 2
    assert list(stub.runs) == [run_id]
    assert run_id.startswith("manual__")


def test_a_trigger_refused_by_a_server_error_is_sent_again(stub: StubAirflow) -> None:
    stub.failing_posts = 2
    run_id = client(stub).trigger("archive_submission", {"submission_uuid": "u-1"}, "run-1")
    assert (run_id, stub.posts, list(stub.runs)) == ("run-1", 3, ["run-1"])


def test_a_run_id_taken_with_another_conf_is_an_error(stub: StubAirflow) -> None:
    stub.runs["run-1"] = {"dag_run_id": "run-1", "conf": {"submission_uuid": "other"}}
    with pytest.raises(AirflowApiError, match=r"409 .*run-1 already exists"):
        client(stub).trigger("archive_submission", {"submission_uuid": "u-1"}, "run-1")


def test_a_post_other_than_a_trigger_is_sent_once(stub: StubAirflow) -> None:
    stub.slow_posts = 1
    api = client(stub)
    api.request("GET", "/dags/x")  # logs in first, so the POST below is the only one sent
    with pytest.raises(ServiceError, match="timed out"):
        api.json("POST", "/dags/x/dagRuns", json={"dag_run_id": "run-1", "conf": {}})
    assert stub.posts == 1


def test_an_unpause_whose_answer_was_lost_is_sent_again(stub: StubAirflow) -> None:
    stub.slow_patches = 1
    client(stub).wait_for_dag("archive_submission")
    assert stub.patches == [{"is_paused": False}] * 2
