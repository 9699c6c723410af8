"""Where the archiver API key comes from: the connection first, else AWS Secrets Manager.

Secrets Manager is a moto server on loopback reached over HTTP through the ``hca_<env>_aws``
connection's ``endpoint_url`` (not ``mock_aws``, which patches botocore in-process and would not
notice an endpoint that is ignored).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from hca_archive.http import ServiceError

pytestmark = pytest.mark.integration  # Secrets Manager on a moto server, the archiver over HTTP

UUID = "0d9c5b4e-8a61-4b0e-9d7f-0c3a2e6f1b11"
REPO = Path(__file__).resolve().parents[2]


def connections(monkeypatch, environment: str, endpoint: str, archiver: dict) -> None:
    prefix = f"AIRFLOW_CONN_HCA_{environment.upper()}"
    monkeypatch.setenv(f"{prefix}_ARCHIVER", json.dumps({"conn_type": "http", **archiver}))
    monkeypatch.setenv(
        f"{prefix}_AWS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "test-id",
                "password": "test-secret",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        ),
    )


def api_key(environment: str) -> str:
    from hca_archive.orchestration.hooks import HcaArchiveHook

    return HcaArchiveHook(environment).archiver.http._session.headers["Api-Key"]


# -- what works today (kept as regression tests) ------------------------------------------------


def test_the_connections_key_wins_over_secrets_manager(monkeypatch, moto_endpoint, secrets_manager):
    secrets_manager("ingest/dev/secrets", json.dumps({"archiver_api_key": "from-aws-0001"}))
    connections(
        monkeypatch, "dev", moto_endpoint, {"host": "http://127.0.0.1:9", "password": "conn-0001"}
    )
    assert api_key("dev") == "conn-0001"


def test_each_environment_reads_its_own_secret_over_http(
    monkeypatch, moto_endpoint, secrets_manager
):
    for environment in ("dev", "staging"):
        secrets_manager(
            f"ingest/{environment}/secrets",
            json.dumps({"archiver_api_key": f"{environment}-key-0001", "other": "x"}),
        )
        connections(monkeypatch, environment, moto_endpoint, {"host": "http://127.0.0.1:9"})
    assert api_key("dev") == "dev-key-0001"
    assert api_key("staging") == "staging-key-0001"


def test_the_archiver_connection_can_name_its_own_aws_connection_for_the_secret(
    monkeypatch, moto_endpoint, secrets_manager
):
    """The file jobs' AWS keys (hca_<env>_aws) need not be able to read ingest's secrets."""
    secrets_manager("ingest/dev/secrets", json.dumps({"archiver_api_key": "from-its-own-conn"}))
    archiver = {"host": "http://127.0.0.1:9", "extra": {"secrets_aws_conn_id": "hca_dev_secrets"}}
    connections(monkeypatch, "dev", "http://127.0.0.1:9", archiver)  # the jobs' AWS: no answer
    monkeypatch.setenv(
        "AIRFLOW_CONN_HCA_DEV_SECRETS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "reader-id",
                "password": "reader-secret",
                "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    assert api_key("dev") == "from-its-own-conn"


def test_a_secret_without_the_field_is_named(monkeypatch, moto_endpoint, secrets_manager):
    secrets_manager("ingest/dev/secrets", json.dumps({"something_else": "s3cr3t-value"}))
    connections(monkeypatch, "dev", moto_endpoint, {"host": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match="ingest/dev/secrets has no field archiver_api_key") as e:
        api_key("dev")
    assert "s3cr3t-value" not in str(e.value)


# -- findings ----------------------------------------------------------------------------------


def test_a_blank_connection_password_falls_back_to_secrets_manager(
    monkeypatch, moto_endpoint, secrets_manager
):
    """A password of spaces (a form field cleared with the space bar, a templated empty value)
    is no key: it used to be sent as one, and every call failed with InvalidHeader."""
    secrets_manager("ingest/dev/secrets", json.dumps({"archiver_api_key": "from-aws-0002"}))
    connections(monkeypatch, "dev", moto_endpoint, {"host": "http://127.0.0.1:9", "password": "  "})
    assert api_key("dev") == "from-aws-0002"


@pytest.mark.parametrize(
    ("secret", "what"),
    [
        ("archiver-key-as-plain-text", "not JSON"),
        (json.dumps(["archiver-key-in-a-list"]), "not a JSON object"),
        (json.dumps({"archiver_api_key": 123456789}), "not a string"),
        (json.dumps({"archiver_api_key": " \t "}), "not a string"),
    ],
)
def test_a_secret_of_the_wrong_shape_is_named_without_its_value(
    monkeypatch, moto_endpoint, secrets_manager, secret, what
):
    """Before: ``JSONDecodeError: Expecting value: line 1 column 1 (char 0)`` or
    ``AttributeError: 'list' object has no attribute 'get'`` (neither names the secret), and a
    number was sent as the key, failing later with a misleading InvalidHeader."""
    secrets_manager("ingest/dev/secrets", secret)
    connections(monkeypatch, "dev", moto_endpoint, {"host": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match=f"ingest/dev/secrets.*{what}") as raised:
        api_key("dev")
    for part in ("archiver-key", "123456789"):
        assert part not in str(raised.value)


def test_a_key_from_secrets_manager_is_masked_in_logs(monkeypatch, moto_endpoint, secrets_manager):
    """A key the connection does not hold is unknown to Airflow's masker until we add it: a
    request error or a debug line quoting the header would show it in the task log."""
    from airflow.sdk.log import _secrets_masker

    secrets_manager("ingest/dev/secrets", json.dumps({"archiver_api_key": "from-aws-mask-0004"}))
    connections(monkeypatch, "dev", moto_endpoint, {"host": "http://127.0.0.1:9"})
    assert api_key("dev") == "from-aws-mask-0004"
    assert "from-aws-mask-0004" not in _secrets_masker().redact("Api-Key: from-aws-mask-0004")


class _Archiver(BaseHTTPRequestHandler):
    """Answers 404 (no record yet) to the current key, 401 to any other; records the keys."""

    current = "new-key-0001"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        key = self.headers.get("Api-Key", "")
        type(self).seen.append(key)
        status = 404 if key == self.current else 401
        body = json.dumps({"message": "no" if status == 404 else "bad key"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def archiver_stub() -> Iterator[str]:
    _Archiver.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Archiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_triggerer_picks_up_a_rotated_key(monkeypatch, moto_endpoint, archiver_stub):
    """The triggerer keeps one hook per environment for its whole life (``progress_checks``):
    after the key is rotated every poll was sent with the old key, answered 401 and polled again
    until the wait's deadline (hours), for every run, until the triggerer was restarted."""
    from hca_archive.orchestration import progress_checks

    progress_checks._hook.cache_clear()
    connections(
        monkeypatch, "dev", moto_endpoint, {"host": archiver_stub, "password": "old-key-0001"}
    )
    with pytest.raises(ServiceError, match="HTTP 401"):
        progress_checks.run_check("dsp_submission", "dev", {"submission_uuid": UUID})
    connections(
        monkeypatch, "dev", moto_endpoint, {"host": archiver_stub, "password": "new-key-0001"}
    )
    progress = progress_checks.run_check("dsp_submission", "dev", {"submission_uuid": UUID})
    assert not progress.done
    assert _Archiver.seen[-1] == "new-key-0001"
    progress_checks._hook.cache_clear()
