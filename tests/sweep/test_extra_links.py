"""Extra links: the URLs they give, and that Airflow can show them without a plugin."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import BaseOperator
from airflow.serialization.serialized_objects import OperatorSerialization

from hca_archive.orchestration import extra_links
from hca_archive.orchestration.extra_links import (
    ArchiveSubmissionLink,
    DspSubmissionLink,
    FileJobLink,
    push_file_job_url,
    web_url,
)

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
DSP_URL = "https://submission.ebi.ac.uk/api/submissions/b729f228"


@pytest.fixture
def xcoms(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The task's XComs by key, as ``XCom.get_value`` would find them."""
    values: dict[str, Any] = {}

    def get_value(*, ti_key: Any, key: str) -> Any:
        assert ti_key == "ti"
        return values.get(key)

    monkeypatch.setattr(extra_links.XCom, "get_value", staticmethod(get_value))
    return values


def test_the_archive_submission_link_opens_ingests_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = {"conn_type": "http", "host": "https://api.ingest.dev.example.org/"}
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_INGEST", json.dumps(connection))
    operator = SimpleNamespace(environment="dev", submission_uuid=UUID)
    assert ArchiveSubmissionLink().get_link(operator, ti_key="ti") == (
        "https://api.ingest.dev.example.org/archiveSubmissions/search/findBySubmissionUuid"
        f"?submissionUuid={UUID}&sort=created,desc"
    )


def test_the_archive_submission_link_quotes_what_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_INGEST", '{"conn_type": "http", "host": "ingest"}')
    operator = SimpleNamespace(environment="dev", submission_uuid="x&sort=evil")
    link = ArchiveSubmissionLink().get_link(operator, ti_key="ti")
    assert link.startswith("http://ingest/archiveSubmissions/")
    assert "submissionUuid=x%26sort%3Devil&" in link


@pytest.fixture
def dev_dsp(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    connection = {"conn_type": "http", "host": "https://submission.ebi.ac.uk/api/"}
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_DSP", json.dumps(connection))
    return SimpleNamespace(environment="dev")


def test_the_dsp_link_opens_the_requested_submission_on_the_environments_dsp(
    xcoms: dict[str, Any], dev_dsp: SimpleNamespace
) -> None:
    assert DspSubmissionLink().get_link(dev_dsp, ti_key="ti") == ""
    xcoms["return_value"] = {"dsp_uuid": "b729f228", "dsp_url": "https://evil.example/phish"}
    assert DspSubmissionLink().get_link(dev_dsp, ti_key="ti") == DSP_URL
    xcoms["return_value"] = {"dsp_uuid": "../x?y#z"}
    assert DspSubmissionLink().get_link(dev_dsp, ti_key="ti") == (
        "https://submission.ebi.ac.uk/api/submissions/..%2Fx%3Fy%23z"
    )


def test_links_leave_out_the_user_and_password_a_connection_host_holds(
    monkeypatch: pytest.MonkeyPatch, xcoms: dict[str, Any]
) -> None:
    # A link is kept in XCom and shown to every user of the UI.
    host = "https://proxy:pw-SECRET-7@services.example.org"
    for service in ("INGEST", "DSP"):
        connection = {"conn_type": "http", "host": host}
        monkeypatch.setenv(f"AIRFLOW_CONN_HCA_DEV_{service}", json.dumps(connection))
    operator = SimpleNamespace(environment="dev", submission_uuid=UUID)
    xcoms["return_value"] = {"dsp_uuid": "b729f228"}
    links = [
        ArchiveSubmissionLink().get_link(operator, ti_key="ti"),
        DspSubmissionLink().get_link(operator, ti_key="ti"),
    ]
    assert all(link.startswith("https://services.example.org/") for link in links), links
    assert not [link for link in links if "SECRET" in link]


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "//x/y", "https:x/y", "http:///x", 7, None]
)
def test_only_web_urls_become_links(xcoms: dict[str, Any], url: Any) -> None:
    xcoms["file_job_url"] = url
    assert FileJobLink().get_link(None, ti_key="ti") == ""
    assert web_url(url) == ""


def test_a_file_job_pushes_its_url_for_the_link(xcoms: dict[str, Any]) -> None:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    push_file_job_url(ti, "https://lsf.example.org/jobs/4242")
    xcoms.update(pushed)
    assert FileJobLink().get_link(None, ti_key="ti") == "https://lsf.example.org/jobs/4242"


def test_a_bad_job_url_template_costs_the_link_not_the_file_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The LSF runner pushes the link after bsub: raising there failed a task whose job ran on,
    and every retry (which adopts that job) failed the same way, for a link's typo."""
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    push_file_job_url(ti, "lsf-portal.example.org/jobs/4242")
    assert pushed == {}
    assert "'lsf-portal.example.org/jobs/4242' is not an absolute http(s) URL" in caplog.text
    assert "lsf_job_url" in caplog.text


def test_a_job_url_is_pushed_without_the_user_and_password_it_holds() -> None:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(xcom_push=lambda key, value: pushed.update({key: value}))
    push_file_job_url(ti, "https://portal:pw-SECRET-7@lsf.example.org/jobs/4242")
    assert pushed == {"file_job_url": "https://lsf.example.org/jobs/4242"}


class LinkedOperator(BaseOperator):
    operator_extra_links = (ArchiveSubmissionLink(), DspSubmissionLink(), FileJobLink())


def test_links_are_serialised_as_xcom_keys_so_no_plugin_is_needed() -> None:
    serialised = OperatorSerialization.serialize_operator(LinkedOperator(task_id="linked"))
    links = serialised["_operator_extra_links"]
    assert links == {
        "Archive submission": "_link_ArchiveSubmissionLink",
        "DSP submission": "_link_DspSubmissionLink",
        "LSF job / pod": "_link_FileJobLink",
    }


@pytest.mark.parametrize("module_name", ["lsf.operator", "runners.kubernetes"])
def test_the_file_job_operators_show_the_job_link(module_name: str) -> None:
    module = importlib.import_module(f"hca_archive.orchestration.{module_name}")
    (operator_class,) = [
        value
        for name, value in vars(module).items()
        if name.endswith("FileJobOperator") and value.__module__ == module.__name__
    ]
    serialised = OperatorSerialization.serialize_operator(
        operator_class(task_id="file_job", batch=[], environment="sandbox")
    )
    assert serialised["_operator_extra_links"] == {"LSF job / pod": "_link_FileJobLink"}
