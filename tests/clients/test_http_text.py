"""The text side of the HTTP layer: one-line messages, URL quoting, picklable errors."""

from __future__ import annotations

import pickle

import pytest

from hca_archive.http import JsonHttp, ServiceError, one_line, segment, summarise_html
from hca_archive.url_credentials import redact_url


def test_one_line_collapses_controls_and_truncates():
    assert one_line("a\nb\r\n\tc\x00d\u2028e") == "a b c d e"
    long = one_line("x" * 1000, limit=50)
    assert len(long) == 50 and long.endswith("…")


def test_html_summary_prefers_title_and_skips_scripts():
    page = (
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title>"
        "<style>body{color:red}</style><script>var secret = 1;</script></head>"
        "<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"
    )
    assert summarise_html(page) == "502 Bad Gateway; nginx"
    assert summarise_html("<html></html>") == "(empty page)"


def test_service_error_reads_as_one_line_without_credentials_and_survives_pickling():
    error = ServiceError("boom\n  at line 2", status=503, method="GET", url="https://u:pw@h/x?y=1")

    assert str(error) == "GET https://h/x?y=1: HTTP 503: boom at line 2"
    assert "pw" not in repr(error)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, round trip
    assert (copy.status, copy.message, copy.method, copy.url, str(copy)) == (
        503,
        "boom at line 2",
        "GET",
        "https://h/x?y=1",
        str(error),
    )


def test_redact_url_leaves_plain_urls_alone():
    assert redact_url("http://h:1/p") == "http://h:1/p"
    assert redact_url("http://user:secret@h:1/p") == "http://h:1/p"


def test_segment_quotes_one_path_segment():
    assert segment("a/../b?c#d") == "a%2F..%2Fb%3Fc%23d"
    for bad in ("", ".", "..", None):
        with pytest.raises(ValueError):
            segment(bad)


def test_backoff_doubles_within_jitter_and_is_capped():
    http = JsonHttp("http://127.0.0.1:1", backoff=0.5, max_backoff=4)
    for attempt, ceiling in enumerate([0.5, 1, 2, 4, 4, 4]):
        delays = {http._delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


@pytest.mark.parametrize("url", ["ftp://h/", "file:///etc/passwd", "h:80", "http://"])
def test_only_http_base_urls(url):
    with pytest.raises(ValueError, match="not an http"):
        JsonHttp(url)


def test_repr_shows_only_the_base_url():
    http = JsonHttp("http://127.0.0.1:1/api/", headers={"Api-Key": "sekret"}, auth=("u", "pw"))
    assert repr(http) == "JsonHttp('http://127.0.0.1:1/api')"
    assert http.url("x/y") == "http://127.0.0.1:1/api/x/y"
    assert http.url("") == "http://127.0.0.1:1/api"
