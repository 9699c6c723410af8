"""Run notifications: the message, silence without a connection, and delivery over the wire."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from email import message_from_string
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from hca_archive.localnet import LOOPBACK
from hca_archive.orchestration import notifications
from hca_archive.orchestration.notifications import (
    SlackRunNotifier,
    SmtpRunNotifier,
    describe_run,
    run_notifiers,
)
from tests.sweep.smtp_sink import SmtpSink

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
PARAMS = {"submission_uuid": UUID, "environment": "dev", "runner": "local", "dry_run": False}
ACCESSIONS = [
    {"type": "study", "alias": "HCA_study_1", "accession": "ERP000123"},
    {"type": "sequencingRun", "alias": "HCA_run_1", "accession": "ERR000456"},
]
VALIDATION_ERROR = "metadata validation failed for DSP submission d5p: biomaterial 1: bad taxon"


def archived_report() -> dict[str, Any]:
    return {
        "run_id": "sweep__dev__" + UUID,
        "params": PARAMS,
        "dsp_submission": "d5p",
        "steps": [{"step": "check_submission", "states": ["success"], "outcomes": ["ok"]}],
        "files": [{"name": "a.bam", "bytes": 1000, "md5": "0" * 32}, {"name": "b", "bytes": 24}],
        "failed_jobs": [],
        "accessions": ACCESSIONS,
    }


def failed_report() -> dict[str, Any]:
    return {
        **archived_report(),
        "steps": [
            {"step": "check_submission", "states": ["success"], "outcomes": ["ok"]},
            {"step": "fetch_plan", "states": ["upstream_failed"], "outcomes": []},
            {"step": "check_metadata", "states": ["failed"], "outcomes": [VALIDATION_ERROR]},
        ],
        "files": [],
        "accessions": [],
    }


def test_success_names_the_submission_and_its_accessions() -> None:
    message = describe_run(archived_report(), True, run_url="http://airflow/run")
    assert message.subject == f"[hca-archive dev] submission {UUID}: archived (2 accessions)"
    assert "Accession study HCA_study_1: ERP000123" in message.text
    assert "Accession sequencingRun HCA_run_1: ERR000456" in message.text
    assert "DSP submission d5p" in message.text
    assert "Files uploaded or found on DSP: 2 (1024 bytes)" in message.text
    assert "Airflow: http://airflow/run" in message.text


def test_failure_names_the_step_that_failed_and_why_not_its_downstream() -> None:
    message = describe_run(failed_report(), False)
    assert message.subject == f"[hca-archive dev] submission {UUID}: FAILED at check_metadata"
    assert f"Failed step: check_metadata: {VALIDATION_ERROR}" in message.text


def test_failure_lists_the_failed_file_jobs() -> None:
    report = failed_report()
    report["failed_jobs"] = [{"job": "m1/out.bam", "error": "md5 mismatch for R2.fastq.gz"}]
    assert "Failed job m1/out.bam: md5 mismatch for R2.fastq.gz" in describe_run(report, False).text


def test_a_failure_without_a_failed_step_gives_airflows_reason() -> None:
    report = {**archived_report(), "accessions": []}
    message = describe_run(report, False, reason="timed_out")
    assert message.subject.endswith(": FAILED")
    assert "Reason: timed_out" in message.text


def test_a_dry_run_and_an_already_archived_submission_say_so() -> None:
    dry = {**archived_report(), "params": {**PARAMS, "dry_run": True}, "accessions": []}
    assert describe_run(dry, True).subject.endswith(": dry run finished")
    done = archived_report()
    done["accessions"] = []
    done["steps"][0]["outcomes"] = [f"submission {UUID} is Archived: already archived"]
    message = describe_run(done, True)
    assert message.subject.endswith(": finished, nothing archived")
    assert "already archived" in message.text


class RunTi:
    """The last task instance of a run, as a DAG callback's context holds it."""

    dag_id = "archive_submission"
    run_id = "sweep__dev__" + UUID
    try_number = 1

    def __init__(self, xcoms: dict[tuple[str, str], Any], states: dict[str, str]) -> None:
        self.xcoms = xcoms
        self.states = states

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def get_task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str]]:
        return {self.run_id: self.states}


def failed_run_context() -> dict[str, Any]:
    ti = RunTi(
        {("check_metadata", "step"): {"outcome": VALIDATION_ERROR, "seconds": 3}},
        {"check_submission": "success", "check_metadata": "failed", "report": "failed"},
    )
    dag_run = SimpleNamespace(run_type="scheduled", triggering_user_name=None)
    return {"ti": ti, "dag_run": dag_run, "params": PARAMS, "reason": "task_failure"}


def archived_run_context() -> dict[str, Any]:
    context = failed_run_context()
    context["ti"] = RunTi({("report", "return_value"): archived_report()}, {})
    return context


def test_without_connections_nothing_is_sent_and_the_run_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_HCA_NOTIFY_SMTP", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_HCA_NOTIFY_SLACK", raising=False)

    def must_not_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a message was built or sent without a connection")

    monkeypatch.setattr(notifications, "run_message", must_not_run)
    monkeypatch.setattr(SmtpRunNotifier, "send", must_not_run)
    monkeypatch.setattr(SlackRunNotifier, "send", must_not_run)
    for callbacks in run_notifiers().values():
        for notifier in callbacks:
            notifier(failed_run_context())


def test_run_notifiers_cover_both_channels_and_outcomes() -> None:
    callbacks = run_notifiers()
    for key, succeeded in (("on_success_callback", True), ("on_failure_callback", False)):
        assert {type(n) for n in callbacks[key]} == {SmtpRunNotifier, SlackRunNotifier}
        assert all(n.succeeded is succeeded for n in callbacks[key])


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    sink = SmtpSink()
    connection = sink.connection(["wranglers@example.org"])
    monkeypatch.setenv("AIRFLOW_CONN_HCA_NOTIFY_SMTP", json.dumps(connection))
    yield sink
    sink.close()


@pytest.mark.integration
def test_a_failure_is_mailed_through_the_configured_server(smtp_sink: SmtpSink) -> None:
    SmtpRunNotifier(False)(failed_run_context())
    (raw,) = smtp_sink.messages
    mail = message_from_string(raw)
    assert mail["To"] == "wranglers@example.org"
    assert mail["From"] == "airflow@example.org"
    assert mail["Subject"] == f"[hca-archive dev] submission {UUID}: FAILED at check_metadata"
    (html,) = [part for part in mail.walk() if part.get_content_type() == "text/html"]
    assert VALIDATION_ERROR in html.get_payload(decode=True).decode()


@pytest.fixture
def slack_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    posted: list[dict[str, Any]] = []

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            posted.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{LOOPBACK}:{server.server_address[1]}/services/T0/B0/secret"
    connection = {"conn_type": "slackwebhook", "password": url}
    monkeypatch.setenv("AIRFLOW_CONN_HCA_NOTIFY_SLACK", json.dumps(connection))
    yield posted
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_a_success_is_posted_to_the_slack_webhook(slack_sink: list[dict[str, Any]]) -> None:
    SlackRunNotifier(True)(archived_run_context())
    (post,) = slack_sink
    assert post["path"] == "/services/T0/B0/secret"
    text = post["body"]["text"]
    assert f"submission {UUID}: archived (2 accessions)" in text
    assert "ERP000123" in text and "ERR000456" in text


@pytest.mark.integration
def test_service_text_reaches_slack_as_text_not_as_mentions_or_links(
    slack_sink: list[dict[str, Any]],
) -> None:
    context = failed_run_context()
    hostile = "bad taxon <!channel> <https://evil.example|see here> & more"
    context["ti"] = RunTi(
        {("check_metadata", "step"): {"outcome": hostile, "seconds": 3}},
        {"check_submission": "success", "check_metadata": "failed", "report": "failed"},
    )
    SlackRunNotifier(False)(context)
    (post,) = slack_sink
    text = post["body"]["text"]
    assert "bad taxon &lt;!channel&gt; &lt;https://evil.example|see here&gt; &amp; more" in text
    assert "<!channel>" not in text and "<https://" not in text


@pytest.mark.integration
@pytest.mark.parametrize(
    "password",
    [
        "{url}/services/T0/B0/hook-SECRET-{n}\n",  # pasted with its line break
        " T0/B0/hook-SECRET-{n}",  # the token alone, joined to the host
        "T0/B0/hook-SECRET-{n}/",
    ],
)
def test_the_webhook_stays_masked_when_slack_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], password: str
) -> None:
    """slack_sdk logs the webhook URL it retries, at INFO; Airflow masks the connection's
    password as stored, but the hook posts to it stripped (and joined to the host)."""
    from airflow.sdk.log import _secrets_masker

    with socket.socket() as probe:  # a port nobody listens on: the post is refused, then retried
        probe.bind((LOOPBACK, 0))
        url = f"http://{LOOPBACK}:{probe.getsockname()[1]}"
    password = password.format(url=url, n=secrets.token_hex(4))  # a new secret for each case
    connection = {"conn_type": "slackwebhook", "host": f"{url}/services", "password": password}
    monkeypatch.setenv("AIRFLOW_CONN_HCA_NOTIFY_SLACK", json.dumps(connection))
    with pytest.raises(OSError):  # urllib's URLError
        SlackRunNotifier(True)(archived_run_context())
    logged = "".join(capfd.readouterr())  # the hook logs through structlog, to the console
    assert "Going to retry the same request: POST" in logged  # the line naming the URL
    assert "hook-SECRET" not in _secrets_masker().redact(logged)


def test_failed_file_jobs_are_listed_once_not_again_in_the_failed_steps_reason() -> None:
    report = failed_report()
    report["steps"] = [
        {"step": "check_submission", "states": ["success"], "outcomes": ["ok"]},
        {
            "step": "run_local",
            "states": ["failed", "failed"],
            "outcomes": [
                "1 file job(s) failed: m1/a.bam: job 0 (m1/a.bam): convert: not FASTQ",
                "run-job exited 2 without a result JSON: 'disk full'",
            ],
        },
    ]
    report["failed_jobs"] = [{"job": "m1/a.bam", "error": "job 0 (m1/a.bam): convert: not FASTQ"}]
    text = describe_run(report, False).text
    assert text.count("not FASTQ") == 1
    assert "Failed job m1/a.bam: job 0 (m1/a.bam): convert: not FASTQ" in text
    # what the listed jobs do not say is kept: a task that left no result
    assert (
        "Failed step: run_local: 1 file job(s) failed, listed below; "
        "run-job exited 2 without a result JSON: 'disk full'" in text
    )
