"""AapTokenSource: basic auth, caching, refresh before expiry, one fetch under concurrency."""

from __future__ import annotations

import base64
import threading

import pytest

from hca_archive.clients import AapTokenSource, jwt_expiry
from hca_archive.http import ServiceError
from tests.clients.jwt import make_jwt
from tests.clients.stub_server import Reply, Seen

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def token_server(stub, lifetime: float, clock: Clock) -> list[str]:
    """Serve a new token per request, valid for ``lifetime`` seconds from the clock's now."""
    issued: list[str] = []

    def answer(seen: Seen) -> Reply:
        if (
            seen.headers.get("Authorization")
            != "Basic " + base64.b64encode(b"wrangler:pw").decode()
        ):
            return Reply(401, {"message": "bad credentials"})
        issued.append(make_jwt(clock.now + lifetime, subject=f"t{len(issued)}"))
        return Reply(200, issued[-1] + "\n", "text/plain")

    stub.on("GET", "/auth", answer)
    return issued


@pytest.mark.integration
def test_token_is_cached_then_refreshed_margin_seconds_early(stub, fast):
    clock = Clock()
    issued = token_server(stub, lifetime=3600, clock=clock)
    tokens = AapTokenSource(f"{stub.url}/auth", "wrangler", "pw", clock=clock, **fast)

    first = tokens.token()
    clock.now = NOW + 3600 - 301
    assert tokens.token() == first
    clock.now = NOW + 3600 - 300
    second = tokens.token()

    assert (first, second) == (issued[0], issued[1])
    assert len(stub.requests_to("/auth")) == 2


@pytest.mark.integration
def test_short_lived_token_is_reused_for_half_its_life(stub, fast):
    clock = Clock()
    issued = token_server(stub, lifetime=100, clock=clock)
    tokens = AapTokenSource(f"{stub.url}/auth", "wrangler", "pw", clock=clock, **fast)

    first = tokens.token()
    clock.now = NOW + 49
    assert tokens.token() == first  # a refresh before half its life would give another
    clock.now = NOW + 50
    second = tokens.token()

    assert (first, second) == (issued[0], issued[1])
    assert len(issued) == 2


@pytest.mark.integration
def test_invalidate_forces_a_new_token(stub, fast):
    clock = Clock()
    issued = token_server(stub, lifetime=3600, clock=clock)
    tokens = AapTokenSource(f"{stub.url}/auth", "wrangler", "pw", clock=clock, **fast)

    tokens.token()
    tokens.invalidate()

    assert tokens.token() == issued[1]


@pytest.mark.integration
def test_concurrent_callers_share_one_fetch(stub, fast):
    clock = Clock()
    token_server(stub, lifetime=3600, clock=clock)
    tokens = AapTokenSource(f"{stub.url}/auth", "wrangler", "pw", clock=clock, **fast)
    start = threading.Barrier(8)
    results: list[str] = []

    def call() -> None:
        start.wait()
        results.append(tokens.token())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(results)) == 1 and len(results) == 8
    assert len(stub.requests_to("/auth")) == 1


@pytest.mark.integration
def test_wrong_password_and_non_jwt_answers_are_service_errors(stub, fast):
    clock = Clock()
    token_server(stub, lifetime=3600, clock=clock)
    with pytest.raises(ServiceError) as raised:
        AapTokenSource(f"{stub.url}/auth", "wrangler", "nope", clock=clock, **fast).token()
    assert raised.value.status == 401

    stub.on("GET", "/other", Reply(200, "<html>login page</html>", "text/html"))
    with pytest.raises(ServiceError, match="AAP answered no usable token: not a JWT"):
        AapTokenSource(f"{stub.url}/other", "wrangler", "pw", **fast).token()


def test_jwt_expiry_reads_exp_without_verifying():
    assert jwt_expiry(make_jwt(NOW)) == NOW
    for bad in (
        "",
        "a.b",
        "a.!!!.c",
        "a." + base64.urlsafe_b64encode(b'{"sub":1}').decode() + ".c",
    ):
        with pytest.raises(ValueError):
            jwt_expiry(bad)
