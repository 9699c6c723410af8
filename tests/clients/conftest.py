"""Fixtures for client tests: a stub server and a no-wait sleep that records backoff delays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.stub_server import StubServer


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    yield server
    server.stop()


class Sleeps(list):
    """Stands in for time.sleep: records each delay instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def fast(sleeps: Sleeps) -> dict:
    """JsonHttp options for tests: short timeouts, recorded (not real) backoff."""
    return {"timeout": (5, 10), "retries": 3, "backoff": 0.5, "sleep": sleeps}
