"""AAP tokens for DSP: fetched with HTTP basic auth, cached, refreshed before they expire."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from requests.auth import HTTPBasicAuth

from hca_archive.http import JsonHttp, ServiceError
from hca_archive.url_credentials import redact_url


class TokenSource(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...


def jwt_expiry(token: str) -> float:
    """The ``exp`` claim of a JWT, read without verifying the signature (DSP verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (expected three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        raise ValueError("JWT payload is not base64url-encoded JSON") from None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise ValueError("JWT has no numeric exp claim")
    return float(exp)


class AapTokenSource:
    """Thread-safe cache of one AAP token.

    A token is refreshed ``refresh_margin`` seconds before its ``exp`` (at most half its lifetime
    early, so a short-lived token is still reused). Callers that are refused with 401 call
    ``invalidate()`` to force a new token. The password and token never appear in reprs.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        refresh_margin: float = 300,
        clock: Callable[[], float] = time.time,
        **http_options: Any,
    ):
        self.username = username
        self.refresh_margin = refresh_margin
        self._http = JsonHttp(url, auth=HTTPBasicAuth(username, password), **http_options)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"AapTokenSource({redact_url(self._http.base_url)!r}, username={self.username!r})"

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch(self) -> None:
        fetched_at = self._clock()
        response = self._http.request("GET", "", ok=(200,))
        token = response.text.strip()
        try:
            expires = jwt_expiry(token)
        except ValueError as error:
            raise ServiceError(
                f"AAP answered no usable token: {error}", method="GET", url=self._http.url("")
            ) from None
        margin = min(self.refresh_margin, max(0.0, expires - fetched_at) / 2)
        self._token = token
        self._refresh_at = expires - margin
