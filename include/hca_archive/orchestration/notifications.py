"""Tell the wranglers how an archiving run ended, by e-mail and on Slack.

Each channel is on when its Airflow connection exists, and silent otherwise; the check is made
when a run ends, so adding or removing a connection needs no deployment:

- ``hca_notify_smtp`` (type smtp): the mail server; extra ``to`` (an address or a list) and
  ``from_email``;
- ``hca_notify_slack`` (type slackwebhook): the incoming webhook (password: its URL or token).

The message names the submission and the outcome; on success the accessions, on failure the
failing step and its reason. It is built from the run's report (the ``report`` task's return
value, or gathered again from the steps' records when the report task failed).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

from hca_archive.orchestration.report import (
    FAILED_STATES,
    FILE_JOB_STEPS,
    capped,
    collect_report,
    failure_outcomes,
)

log = logging.getLogger(__name__)

SMTP_CONN_ID = "hca_notify_smtp"
SLACK_CONN_ID = "hca_notify_slack"
REPORT_TASK_ID = "report"


@dataclass(frozen=True)
class RunMessage:
    subject: str
    text: str


def failing_step(report: dict[str, Any]) -> tuple[str, str]:
    """The first step that failed itself (not only upstream) and why; else the first failed.

    A file-job step's reasons that only repeat its failed jobs are left out: the message lists
    those jobs, one line each.
    """
    failed = [step for step in report.get("steps", []) if FAILED_STATES & set(step["states"])]
    failed.sort(key=lambda step: "failed" not in step["states"])
    if not failed:
        return "", ""
    step = failed[0]
    outcomes = list(filter(None, failure_outcomes(step)))
    failed_jobs = report.get("failed_jobs", []) if step["step"] in FILE_JOB_STEPS else []
    if failed_jobs:
        listed = [f"{job['job']}: {job['error']}" for job in failed_jobs]
        outcomes = [text for text in outcomes if not any(job in text for job in listed)]
        outcomes.insert(0, f"{len(failed_jobs)} file job(s) failed, listed below")
    return step["step"], "; ".join(capped(outcomes)) or "see the task's log"


def describe_run(
    report: dict[str, Any], succeeded: bool, reason: str = "", run_url: str = ""
) -> RunMessage:
    """The notification of one run, from its report. ``reason``: Airflow's, when no step failed."""
    params = report.get("params", {})
    submission = params.get("submission_uuid", "?")
    environment = params.get("environment", "?")
    entities = report.get("accessions", [])
    accessions = [a for a in entities if a.get("accession")]
    unaccessioned = [a for a in entities if not a.get("accession")]
    if not succeeded:
        step, why = failing_step(report)
        outcome = f"FAILED at {step}" if step else "FAILED"
        details = [f"Failed step: {step}: {why}" if step else f"Reason: {reason or 'unknown'}"]
        failed_jobs = report.get("failed_jobs", [])
        details += capped(
            [f"Failed job {job['job']}: {job['error']}" for job in failed_jobs], "failed jobs"
        )
    elif params.get("dry_run"):
        outcome, details = "dry run finished", []
    elif accessions:
        outcome = f"archived ({len(accessions)} accessions)"
        details = capped(
            [f"Accession {a['type']} {a['alias']}: {a['accession']}" for a in accessions],
            "accessions",
        )
        details += capped(
            [f"No accession for {a['type']} {a['alias']}" for a in unaccessioned],
            "entities without an accession",
        )
    else:
        outcome, details = "finished, nothing archived", [_first_outcome(report)]
    files = report.get("files", [])
    lines = [
        f"Submission {submission} in {environment}: {outcome}",
        f"Run {report.get('run_id', '?')}; DSP submission {report.get('dsp_submission') or '-'}",
        f"Files uploaded or found on DSP: {len(files)} "
        f"({sum(int(file.get('bytes') or 0) for file in files)} bytes)",
        *filter(None, details),
    ]
    if run_url:
        lines.append(f"Airflow: {run_url}")
    return RunMessage(
        f"[hca-archive {environment}] submission {submission}: {outcome}", "\n".join(lines)
    )


def _first_outcome(report: dict[str, Any]) -> str:
    return next(
        (outcome for step in report.get("steps", []) for outcome in step["outcomes"] if outcome),
        "",
    )


def run_message(context: Any, succeeded: bool) -> RunMessage:
    """The message of the run a DAG callback is called for."""
    ti = context["ti"]
    report = (succeeded and ti.xcom_pull(task_ids=REPORT_TASK_ID)) or collect_report(context)
    return describe_run(report, succeeded, str(context.get("reason") or ""), _run_url(ti))


def _run_url(ti: Any) -> str:
    from airflow.utils.helpers import build_airflow_dagrun_url

    try:
        return build_airflow_dagrun_url(dag_id=ti.dag_id, run_id=ti.run_id)
    except Exception:  # a missing [api] base_url must not cost the notification
        log.warning("no link to the run in the notification", exc_info=True)
        return ""


def configured_connection(conn_id: str) -> Any | None:
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


class RunNotifier(BaseNotifier):
    """Sends the run's message through one channel when its connection is configured."""

    channel = ""

    def __init__(self, succeeded: bool, conn_id: str) -> None:
        super().__init__()
        self.succeeded = succeeded
        self.conn_id = conn_id

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing is templated here; skipping also spares ``dag.test()``'s serialized DAG."""

    def notify(self, context: Any) -> None:
        connection = configured_connection(self.conn_id)
        if connection is None:
            log.info("no connection %s: no %s notification", self.conn_id, self.channel)
            return
        message = run_message(context, self.succeeded)
        self.send(connection, message)
        log.info("%s notification sent: %s", self.channel, message.subject)

    def send(self, connection: Any, message: RunMessage) -> None:
        raise NotImplementedError


class SmtpRunNotifier(RunNotifier):
    channel = "e-mail"

    def __init__(self, succeeded: bool, conn_id: str = SMTP_CONN_ID) -> None:
        super().__init__(succeeded, conn_id)

    def send(self, connection: Any, message: RunMessage) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        recipients = connection.extra_dejson.get("to")
        if not recipients:
            raise ValueError(f"connection {self.conn_id} has no extra 'to' (the recipients)")
        with SmtpHook(smtp_conn_id=self.conn_id) as hook:
            hook.send_email_smtp(
                to=recipients,
                subject=message.subject,
                html_content=f"<pre>{html.escape(message.text)}</pre>",
                from_email=connection.extra_dejson.get("from_email"),
            )


class SlackRunNotifier(RunNotifier):
    channel = "Slack"

    def __init__(self, succeeded: bool, conn_id: str = SLACK_CONN_ID) -> None:
        super().__init__(succeeded, conn_id)

    def send(self, connection: Any, message: RunMessage) -> None:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
        from airflow.sdk.log import mask_secret

        hook = SlackWebhookHook(slack_webhook_conn_id=self.conn_id)
        # The webhook URL is the secret. Airflow masks the password as stored, but the hook posts
        # to it stripped, or joined to the host; slack_sdk logs that URL when it retries a post
        # (Slack unreachable), at INFO.
        mask_secret(hook.client.url)
        if token := (connection.password or "").strip().strip("/"):
            mask_secret(token)
        hook.send_text(f"*{slack_escaped(message.subject)}*\n{slack_escaped(message.text)}")


def slack_escaped(text: str) -> str:
    """Text from the services shown as it is: Slack reads ``<...>`` as a link or a mention
    (``<!channel>``), so its three control characters are escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def run_notifiers() -> dict[str, list[RunNotifier]]:
    """DAG arguments: ``DAG(..., **run_notifiers())``."""
    return {
        "on_success_callback": [SmtpRunNotifier(True), SlackRunNotifier(True)],
        "on_failure_callback": [SmtpRunNotifier(False), SlackRunNotifier(False)],
    }
