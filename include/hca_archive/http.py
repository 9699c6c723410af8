"""JSON over HTTP with a timeout on every call, bounded retries and one-line errors.

Retries (exponential backoff with jitter, capped) happen only on connection errors, read timeouts
and 5xx answers; a 4xx is the caller's mistake and is raised at once. A request marked
``idempotent=False`` is retried only when it certainly never reached the server (connection
refused, DNS failure, connect timeout): after a read timeout, a dropped connection or a 5xx the
server may have acted on it already, and repeating it could, for example, create a second DSP
submission.

Redirects are not followed: ``requests`` would forward custom secret headers (``Api-Key``) to
whatever host a redirect names. Reprs and errors never show headers, credentials or tokens.
"""

from __future__ import annotations

import html.parser
import json
import logging
import random
import re
import time
import unicodedata
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, ProtocolError

from hca_archive.url_credentials import redact_url, redact_urls

log = logging.getLogger(__name__)

SUCCESS = (200, 201, 202, 204)
MESSAGE_LIMIT = 300


class ServiceError(Exception):
    """A failed call: ``status`` is None when no HTTP answer came back (connection, timeout)."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "", url: str = ""):
        self.message = one_line(message)
        self.status = status
        self.method = method
        self.url = redact_url(url)
        super().__init__(str(self))

    def __str__(self) -> str:
        outcome = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"{self.method} {self.url}: {outcome}: {self.message}"

    def __reduce__(self):  # keyword-only arguments need help to survive pickling
        return (_rebuild_service_error, (self.message, self.status, self.method, self.url))


def _rebuild_service_error(message: str, status: int | None, method: str, url: str) -> ServiceError:
    return ServiceError(message, status=status, method=method, url=url)


def segment(value: str) -> str:
    """Quote ``value`` as one URL path segment, so an untrusted id cannot add ``/`` or ``..``."""
    if not isinstance(value, str) or not value or value in (".", ".."):
        raise ValueError(f"not a usable identifier: {value!r}")
    return quote(value, safe="")


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Collapse whitespace and control characters, then truncate: safe for one log line."""
    cleaned = "".join(
        " " if unicodedata.category(ch)[0] in "CZ" and ch != " " else ch for ch in text
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class _HtmlText(html.parser.HTMLParser):
    """Collects the title and the visible text chunks of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.chunks: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("title", "script", "style"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        text = one_line(data)
        if not text:
            return
        if not self._open:
            self.chunks.append(text)
        elif self._open[-1] == "title":
            self.title += text


# Spring Boot's whitelabel page explains itself in a sentence that says nothing about the failure.
_BOILERPLATE = re.compile(r"^This application has no explicit mapping for /error", re.IGNORECASE)


def summarise_html(page: str) -> str:
    """One line from an error page: its title, then its text minus boilerplate."""
    parser = _HtmlText()
    try:
        parser.feed(page)
        parser.close()
    except Exception:  # never let a malformed page hide the error being reported
        return one_line(re.sub(r"<[^>]*>", " ", page))
    chunks = [c for c in parser.chunks if c != parser.title and not _BOILERPLATE.match(c)]
    return (
        one_line("; ".join([parser.title, *chunks] if parser.title else chunks)) or "(empty page)"
    )


def summarise_body(response: requests.Response) -> str:
    """The server's message from an error answer, as one line."""
    text = response.text or ""
    content_type = response.headers.get("Content-Type", "").lower()
    if "html" in content_type or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return summarise_html(text)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return one_line(text) or response.reason or "(empty body)"
    if isinstance(doc, dict):
        for key in ("message", "error", "detail", "title"):
            if isinstance(doc.get(key), str) and doc[key]:
                return one_line(doc[key])
    return one_line(json.dumps(doc))


def _never_sent(error: requests.ConnectionError) -> bool:
    """True when the connection itself failed, so the server cannot have seen the request."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    # NewConnectionError (refused, DNS) and NameResolutionError subclass ConnectTimeoutError.
    return isinstance(reason, ConnectTimeoutError)


class JsonHttp:
    """A base URL plus the retry and error policy; one ``requests.Session`` per instance."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float] = (5, 60),
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {redact_url(base_url)!r}")
        if retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("retries, backoff and max_backoff must not be negative")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update(headers or {})
        self._session.auth = auth

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact_url(self.base_url)!r})"

    def url(self, path: str) -> str:
        """``path`` joined to the base URL; an empty path is the base URL itself."""
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def close(self) -> None:
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        ok: Collection[int] = SUCCESS,
    ) -> requests.Response:
        """Send one request, retrying as the module docstring says; non-``ok`` statuses raise."""
        url = self.url(path)
        method = method.upper()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.ConnectionError as error:
                retry = idempotent or _never_sent(error)
                failure = ServiceError(_describe(error), method=method, url=url)
            except requests.Timeout as error:  # a read timeout: the server may be working on it
                retry = idempotent
                failure = ServiceError(_describe(error), method=method, url=url)
            except requests.RequestException as error:
                raise ServiceError(_describe(error), method=method, url=url) from error
            else:
                if response.status_code in ok:
                    return response
                failure = ServiceError(
                    summarise_body(response), status=response.status_code, method=method, url=url
                )
                retry = idempotent and response.status_code >= 500
            if not retry or last:
                raise failure
            delay = self._delay(attempt)
            log.warning(
                "%s (attempt %d of %d, retrying in %.1fs)",
                failure,
                attempt + 1,
                self.retries + 1,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")

    def get_json(
        self, path: str, *, params: Mapping[str, Any] | None = None, missing_ok: bool = False
    ) -> Any:
        """GET and decode JSON; with ``missing_ok`` a 404 gives None instead of an error."""
        ok = (*SUCCESS, 404) if missing_ok else SUCCESS
        response = self.request("GET", path, params=params, ok=ok)
        if response.status_code == 404:
            return None
        return decode_json(response)

    def _delay(self, attempt: int) -> float:
        """Exponential backoff, capped, with "equal jitter" so clients do not retry in lockstep."""
        ceiling = min(self.max_backoff, self.backoff * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def decode_json(response: requests.Response) -> Any:
    """The JSON body of a successful answer, or a ServiceError saying it was not JSON."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        raise ServiceError(
            f"answer is not JSON: {summarise_body(response)}",
            status=response.status_code,
            method=response.request.method or "",
            url=response.url,
        ) from None


def _describe(error: requests.RequestException) -> str:
    """A short cause for a transport failure (requests' own text repeats the connection pool)."""
    if isinstance(error, requests.exceptions.InvalidHeader):  # its text quotes the header value
        return (
            "InvalidHeader: a header value (an API key or token?) has leading whitespace, "
            "a line break or a reserved character; value not shown"
        )
    cause = error.args[0] if error.args else error
    if isinstance(cause, MaxRetryError) and cause.reason is not None:
        cause = cause.reason
    if isinstance(cause, ProtocolError) and len(cause.args) == 2:  # ("Connection aborted.", exc)
        detail = f"{cause.args[0]} {cause.args[1]}"
    else:
        detail = str(cause)
    detail = re.sub(r"^(<[^>]*>|HTTPS?Connection(Pool)?\([^)]*\)):\s*", "", detail)
    # InvalidURL and its kin quote the URL whole, with any user:password a connection holds
    return one_line(f"{type(error).__name__}: {redact_urls(detail)}", limit=200)
