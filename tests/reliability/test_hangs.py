"""A service that accepts the connection and never answers: the call times out and is retried,
it never blocks. Client level, against the session sandbox's ``hang`` knob with short timeouts;
the task level is in test_faults.py."""

from __future__ import annotations

import logging
import threading

import pytest

from hca_archive.http import JsonHttp, ServiceError
from hca_archive.sandbox.process import SandboxInfo

pytestmark = pytest.mark.integration

FIND = "/submissionEnvelopes/search/findByUuidUuid"


def ingest(sandbox: SandboxInfo, retries: int) -> JsonHttp:
    return JsonHttp(sandbox.ingest_url, timeout=(1, 1), retries=retries, backoff=0.1)


@pytest.mark.timeout(60)
def test_a_hung_call_times_out_after_its_retries(
    sandbox_faults: SandboxInfo, caplog: pytest.LogCaptureFixture
) -> None:
    (uuid,) = sandbox_faults.seed(jobs=["plain"], reads=10)
    sandbox_faults.set_faults("ingest", hang=True)
    with (
        caplog.at_level(logging.WARNING, logger="hca_archive.http"),
        pytest.raises(ServiceError) as raised,
    ):
        ingest(sandbox_faults, retries=2).get_json(FIND, params={"uuid": uuid})
    assert raised.value.status is None
    assert "ReadTimeout" in str(raised.value)
    assert [record.message.split("(attempt ")[1][:6] for record in caplog.records] == [
        "1 of 3",
        "2 of 3",
    ]


@pytest.mark.timeout(60)
def test_a_call_made_during_a_hang_succeeds_once_the_hang_is_cleared(
    sandbox_faults: SandboxInfo, caplog: pytest.LogCaptureFixture
) -> None:
    (uuid,) = sandbox_faults.seed(jobs=["plain"], reads=10)
    sandbox_faults.set_faults("ingest", hang=True)
    clear = threading.Timer(2.5, sandbox_faults.clear_faults)
    clear.start()
    try:
        with caplog.at_level(logging.WARNING, logger="hca_archive.http"):
            envelope = ingest(sandbox_faults, retries=20).get_json(FIND, params={"uuid": uuid})
    finally:
        clear.cancel()
    assert envelope["uuid"]["uuid"] == uuid
    assert any("ReadTimeout" in record.message for record in caplog.records)
