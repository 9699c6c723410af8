"""No API key, password or token in reprs, errors or logs, even while calls fail and retry."""

from __future__ import annotations

import logging

import pytest

from hca_archive.clients import AapTokenSource, ArchiverClient, DspClient, IngestClient
from hca_archive.http import JsonHttp, ServiceError
from tests.clients.jwt import make_jwt
from tests.clients.stub_server import Reply

pytestmark = pytest.mark.integration

API_KEY = "apikey-SECRET-1234"
PASSWORD = "password-SECRET-5678"
TOKEN = make_jwt(4_000_000_000, subject="token-SECRET-9")


def test_no_secret_leaks(stub, fast, caplog):
    caplog.set_level(logging.DEBUG)
    stub.on("GET", "/auth", Reply(200, TOKEN, "text/plain"))
    stub.on("GET", "/latestArchiveSubmission/u", Reply(500, {"message": "boom"}))
    stub.on(
        "GET", "/api/submissions/s/submissionStatus", Reply(503, "<html>down</html>", "text/html")
    )
    aap = AapTokenSource(f"{stub.url}/auth", "wrangler", PASSWORD, **fast)
    archiver = ArchiverClient(stub.url, API_KEY, **fast)
    dsp = DspClient(stub.url, aap, **fast)

    errors = []
    for call in (lambda: archiver.latest("u"), lambda: dsp.status("s")):
        with pytest.raises(ServiceError) as raised:
            call()
        errors.append(raised.value)

    shown = [repr(aap), str(aap), repr(archiver), repr(dsp), repr(archiver.http), repr(dsp.http)]
    shown += [str(e) for e in errors] + [repr(e) for e in errors]
    shown.append(caplog.text)
    assert any("attempt" in r.getMessage() for r in caplog.records)  # the retries were logged
    for text in shown:
        for secret in (API_KEY, PASSWORD, TOKEN, "token-SECRET"):
            assert secret not in text
    assert stub.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"  # it was really sent


@pytest.mark.parametrize("key", [f"{API_KEY}\n", f" {API_KEY}", f"{API_KEY}\r\nX: y"])
def test_a_key_that_requests_refuses_to_send_is_not_shown(stub, fast, key):
    # A key pasted with a line break or a leading space: requests refuses the header, naming its
    # value; the error goes to the log and the step's XCom record.
    archiver = ArchiverClient(stub.url, key, **fast)
    with pytest.raises(ServiceError) as raised:
        archiver.latest("u")
    assert "header value" in str(raised.value)
    for text in (str(raised.value), repr(raised.value)):
        assert "SECRET" not in text
    assert stub.seen == []


def test_a_url_that_requests_cannot_parse_is_shown_without_its_password():
    # A connection host holding credentials and a mistyped port: requests' InvalidURL quotes
    # the whole URL, user:password included, into the error that goes to the log and the XCom.
    http = JsonHttp(f"http://wrangler:{PASSWORD}@127.0.0.1:99999", retries=0)
    with pytest.raises(ServiceError) as raised:
        http.request("GET", "x")
    assert "InvalidURL" in str(raised.value)
    for text in (str(raised.value), repr(raised.value)):
        assert "SECRET" not in text


def test_clients_of_urls_with_credentials_show_neither_in_reprs_nor_errors(fast):
    # The kubernetes runner leaves such addresses to its Secret; the clients must not show them.
    url = f"https://wrangler:{PASSWORD}@services.example.org"
    aap = AapTokenSource(f"{url}/auth", "wrangler", "pw", **fast)
    shown = [
        repr(ArchiverClient(url, API_KEY, **fast)),
        repr(IngestClient(url, **fast)),
        repr(aap),
        repr(DspClient(f"{url}/api/", aap, **fast)),
    ]
    with pytest.raises(ValueError) as raised:
        DspClient(f"ftp://wrangler:{PASSWORD}@services.example.org", aap, **fast)
    shown.append(str(raised.value))
    assert all("services.example.org" in text for text in shown)
    for text in shown:
        assert "SECRET" not in text
