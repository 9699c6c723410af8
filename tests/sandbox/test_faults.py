"""Fault knobs: JSON 5xx, HTML 500 pages, dropped connections, hangs; set at runtime or at start."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from tests.fixtures.sandbox import SandboxInfo, start_sandbox
from tests.sandbox.helpers import archiver, latest, trigger_and_wait

pytestmark = pytest.mark.integration


def test_error_rate_one_answers_json_5xx_and_the_admin_api_is_unaffected(
    sandbox_faults: SandboxInfo,
) -> None:
    sandbox_faults.set_faults("archiver", error_rate=1)
    response = archiver(sandbox_faults, "GET", f"/latestArchiveSubmission/{uuid.uuid4()}")
    assert response.status_code >= 500
    assert response.json()["message"] == "injected fault"
    assert "submissions" in sandbox_faults.summary()
    sandbox_faults.clear_faults()
    assert (
        archiver(sandbox_faults, "GET", f"/latestArchiveSubmission/{uuid.uuid4()}").status_code
        == 404
    )


def test_html500_rate_answers_a_whitelabel_page(sandbox_faults: SandboxInfo) -> None:
    sandbox_faults.set_faults("ingest", html500_rate=1)
    response = requests.get(
        f"{sandbox_faults.ingest_url}/submissionEnvelopes/search/findByUuidUuid",
        params={"uuid": str(uuid.uuid4())},
        timeout=10,
    )
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Whitelabel Error Page" in response.text


def test_drop_rate_one_closes_the_connection_without_an_answer(sandbox_faults: SandboxInfo) -> None:
    sandbox_faults.set_faults("dsp", drop_rate=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox_faults.dsp_url}/api/", timeout=10)


def test_hang_never_answers(sandbox_faults: SandboxInfo) -> None:
    sandbox_faults.set_faults("aap", hang=True)
    with pytest.raises(requests.ReadTimeout):
        requests.get(
            sandbox_faults.aap_url,
            auth=(sandbox_faults.aap_username, sandbox_faults.aap_password),
            timeout=(5, 0.5),
        )


def test_a_faulted_trigger_does_nothing(sandbox_faults: SandboxInfo) -> None:
    [faulted, later] = sandbox_faults.seed(count=2, jobs=["plain"], reads=10)
    sandbox_faults.set_faults("archiver", error_rate=1)
    body = {"submission_uuid": faulted}
    assert archiver(sandbox_faults, "POST", "/archiveSubmissions", json=body).status_code >= 500
    sandbox_faults.clear_faults()
    trigger_and_wait(sandbox_faults, later)  # background work runs in order
    assert latest(sandbox_faults, faulted) is None


def test_unknown_fault_knobs_and_services_are_refused(sandbox_faults: SandboxInfo) -> None:
    admin = sandbox_faults.admin_url
    bad_knob = requests.put(f"{admin}/faults/dsp", json={"explode": 1}, timeout=10)
    bad_rate = requests.put(f"{admin}/faults/dsp", json={"error_rate": 2}, timeout=10)
    bad_service = requests.put(f"{admin}/faults/s4", json={"error_rate": 1}, timeout=10)
    assert [r.status_code for r in (bad_knob, bad_rate, bad_service)] == [400, 400, 400]
    assert "explode" in bad_knob.json()["message"]


def test_faults_from_the_command_line_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCA_SANDBOX_FAULTS", "aap.error_rate=1")
    with start_sandbox(tmp_path / "state", "--fault", "ingest.drop_rate=1") as faulty:
        token = requests.get(
            faulty.aap_url, auth=(faulty.aap_username, faulty.aap_password), timeout=10
        )
        assert token.status_code >= 500
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{faulty.ingest_url}/submissionEnvelopes/{'0' * 24}", timeout=10)
        faulty.clear_faults()
        assert faulty.token()
