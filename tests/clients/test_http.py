"""JsonHttp against a stub server: what is retried, what is not, and how errors read."""

from __future__ import annotations

import logging
import socket

import pytest

from hca_archive.http import JsonHttp, ServiceError
from tests.clients.stub_server import DROP, HANG, Reply

pytestmark = pytest.mark.integration

WHITELABEL = (
    "<html><body><h1>Whitelabel Error Page</h1>"
    "<p>This application has no explicit mapping for /error, so you are seeing this as a"
    " fallback.</p><div id='created'>Sun Nov 29 12:00:00 UTC 2026</div>"
    "<div>There was an unexpected error (type=Internal Server Error, status=500).</div>"
    '<div>I/O error on POST request for "https://submission.ebi.ac.uk/api/submissions":\n'
    "Connection reset; nested exception is java.net.SocketException</div>"
    + "<div>stack frame</div>" * 500
    + "</body></html>"
)


def test_get_is_retried_after_5xx_with_growing_capped_backoff(stub, fast, sleeps):
    stub.on(
        "GET",
        "/thing",
        Reply(503, {"message": "busy"}),
        Reply(502, "bad gateway"),
        Reply(500, {}),
        Reply(200, {"ok": True}),
    )
    http = JsonHttp(stub.url, **{**fast, "backoff": 1.0, "max_backoff": 3.0})

    assert http.get_json("thing") == {"ok": True}

    assert len(stub.requests_to("/thing")) == 4
    ceilings = [1.0, 2.0, 3.0]  # 1 * 2**attempt, capped at 3
    assert len(sleeps) == 3
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


def test_get_is_retried_after_a_dropped_connection(stub, fast, sleeps):
    stub.on("GET", "/thing", DROP, Reply(200, {"ok": True}))

    assert JsonHttp(stub.url, **fast).get_json("thing") == {"ok": True}
    assert len(stub.requests_to("/thing")) == 2


def test_retries_run_out_with_the_last_error(stub, fast, sleeps):
    stub.on(
        "GET",
        "/thing",
        Reply(503, {"message": "busy"}),
        Reply(502, {"message": "bad gateway"}),
        Reply(500, {"message": "boom"}),
        Reply(504, {"message": "still busy"}),  # the answer to the last attempt
    )

    with pytest.raises(ServiceError) as raised:
        JsonHttp(stub.url, **fast).get_json("thing")

    assert raised.value.status == 504
    assert raised.value.message == "still busy"
    assert len(stub.requests_to("/thing")) == fast["retries"] + 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_4xx_is_not_retried(stub, fast, sleeps, status):
    stub.on("POST", "/thing", Reply(status, {"message": "header missing Api-Key"}))

    with pytest.raises(ServiceError) as raised:
        JsonHttp(stub.url, **fast).request("POST", "thing", json={"a": 1})

    error = raised.value
    assert (error.status, error.method, error.url) == (status, "POST", f"{stub.url}/thing")
    assert str(error) == f"POST {stub.url}/thing: HTTP {status}: header missing Api-Key"
    assert len(stub.requests_to("/thing")) == 1
    assert sleeps == []


def test_non_idempotent_post_is_not_repeated_after_a_5xx(stub, fast, sleeps):
    stub.on("POST", "/archiveSubmissions", Reply(500, WHITELABEL, "text/html"), Reply(200, {}))

    with pytest.raises(ServiceError) as raised:
        JsonHttp(stub.url, **fast).request("POST", "archiveSubmissions", idempotent=False)

    assert raised.value.status == 500
    assert len(stub.requests_to("/archiveSubmissions")) == 1


def test_non_idempotent_post_is_not_repeated_after_a_dropped_connection(stub, fast, sleeps):
    stub.on("POST", "/archiveSubmissions", DROP, Reply(200, {}))

    with pytest.raises(ServiceError) as raised:
        JsonHttp(stub.url, **fast).request("POST", "archiveSubmissions", idempotent=False)

    assert raised.value.status is None
    assert raised.value.message == (
        "ConnectionError: Connection aborted. Remote end closed connection without response"
    )
    assert len(stub.requests_to("/archiveSubmissions")) == 1


def test_non_idempotent_post_is_not_repeated_after_a_read_timeout(stub, fast, sleeps):
    stub.on("POST", "/archiveSubmissions", HANG)
    http = JsonHttp(stub.url, **{**fast, "timeout": (5, 0.3)})

    with pytest.raises(ServiceError) as raised:
        http.request("POST", "archiveSubmissions", idempotent=False)

    assert raised.value.status is None
    assert "ReadTimeout" in raised.value.message
    assert len(stub.requests_to("/archiveSubmissions")) == 1
    assert sleeps == []


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_non_idempotent_post_is_retried_when_the_connection_was_refused(fast, sleeps):
    http = JsonHttp(f"http://127.0.0.1:{_closed_port()}", **fast)

    with pytest.raises(ServiceError) as raised:
        http.request("POST", "archiveSubmissions", idempotent=False)

    assert raised.value.status is None
    assert "Connection refused" in raised.value.message
    assert len(sleeps) == fast["retries"]  # every attempt failed before reaching a server


def test_read_timeout_becomes_a_service_error_and_get_is_retried(stub, fast, sleeps):
    stub.on("GET", "/slow", HANG)
    http = JsonHttp(stub.url, **{**fast, "timeout": (5, 0.3), "retries": 1})

    with pytest.raises(ServiceError) as raised:
        http.get_json("slow")

    assert raised.value.status is None
    assert "ReadTimeout" in raised.value.message
    assert str(raised.value).startswith(f"GET {stub.url}/slow: no response: ")
    assert len(stub.requests_to("/slow")) == 2


def test_html_500_is_summarised_in_one_line(stub, fast, sleeps):
    stub.on("GET", "/thing", Reply(500, WHITELABEL, "text/html;charset=UTF-8"))

    with pytest.raises(ServiceError) as raised:
        JsonHttp(stub.url, **{**fast, "retries": 0}).get_json("thing")

    text = str(raised.value)
    assert "\n" not in text and "<" not in text
    assert len(text) < 400
    assert raised.value.message.startswith("Whitelabel Error Page; ")
    assert "I/O error on POST request" in raised.value.message
    assert "no explicit mapping" not in raised.value.message


def test_redirects_are_not_followed_so_headers_stay_home(stub, fast, sleeps):
    stub.on("GET", "/moved", Reply(302, "", headers={"Location": f"{stub.url}/elsewhere"}))
    http = JsonHttp(stub.url, **fast, headers={"Api-Key": "k"})

    with pytest.raises(ServiceError) as raised:
        http.get_json("moved")

    assert raised.value.status == 302
    assert stub.requests_to("/elsewhere") == []


def test_missing_ok_turns_404_into_none_and_json_null_is_none(stub, fast):
    stub.on("GET", "/gone", Reply(404, None))
    stub.on("GET", "/null", Reply(200, None))
    http = JsonHttp(stub.url, **fast)

    assert http.get_json("gone", missing_ok=True) is None
    assert http.get_json("null") is None
    with pytest.raises(ServiceError):
        http.get_json("gone")


def test_a_non_json_success_is_a_clear_error(stub, fast):
    stub.on("GET", "/page", Reply(200, "<html><title>Login</title></html>", "text/html"))

    with pytest.raises(ServiceError, match="answer is not JSON: Login"):
        JsonHttp(stub.url, **fast).get_json("page")


def test_json_nested_deeper_than_python_parses_is_a_clear_error(stub, fast):
    stub.on("GET", "/deep", Reply(200, b"[" * 200_000))

    with pytest.raises(ServiceError, match=r"answer is not JSON: \[\[\["):
        JsonHttp(stub.url, **fast).get_json("deep")


def test_retries_are_logged_one_line_each(stub, fast, caplog):
    stub.on("GET", "/thing", Reply(500, WHITELABEL, "text/html"), Reply(200, {}))
    caplog.set_level(logging.WARNING, logger="hca_archive.http")

    JsonHttp(stub.url, **fast).get_json("thing")

    [record] = caplog.records
    assert "\n" not in record.getMessage()
    assert "attempt 1 of 4" in record.getMessage()
