"""The wrangler's signals in a real Airflow: extra links on the task page, e-mail on failure.

The DAG processor runs the DAG's failure callbacks, with the run's XComs and task states
fetched through Airflow's supervisor; the UI's links come from XComs the worker wrote.
"""

from __future__ import annotations

import time
from email import message_from_string
from email.message import Message
from urllib.parse import quote

import pytest

from hca_archive.clients.dsp import dsp_root
from tests.fixtures.airflow import AirflowStack
from tests.sweep.conftest import WRANGLERS, PrivateStack
from tests.sweep.dags.wrangler_signals import JOB_URL, REASON, SUBMISSION_UUID

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAG = "wrangler_signals"


@pytest.fixture(scope="module")
def failed_run(private_stack: PrivateStack) -> str:
    api = private_stack.airflow.api
    run_id = api.trigger(DAG, {})
    assert api.wait_for_run(DAG, run_id, 300)["state"] == "failed"
    return run_id


def mail_about(private_stack: PrivateStack, submission_uuid: str, timeout: float = 180) -> Message:
    """The first mail about ``submission_uuid`` (runs of other tests in this stack mail too); the
    callback runs in the DAG processor after the run ends."""
    deadline = time.monotonic() + timeout
    while True:
        for text in list(private_stack.mails.messages):
            mail = message_from_string(text)
            if submission_uuid in (mail["Subject"] or ""):
                return mail
        if time.monotonic() > deadline:
            pytest.fail(f"no mail about {submission_uuid} within {timeout}s")
        time.sleep(1)


def test_a_failed_run_mails_the_wranglers_the_failing_step(
    private_stack: PrivateStack, failed_run: str
) -> None:
    mail = mail_about(private_stack, SUBMISSION_UUID)
    assert mail["To"] == ", ".join(WRANGLERS)
    assert mail["Subject"] == (
        f"[hca-archive sandbox] submission {SUBMISSION_UUID}: FAILED at check_metadata"
    )
    (html,) = [part for part in mail.walk() if part.get_content_type() == "text/html"]
    body = html.get_payload(decode=True).decode()
    assert f"Failed step: check_metadata: {REASON}" in body
    assert f"Run {failed_run}" in body


def test_the_request_task_page_links_to_records_dsp_and_job(
    private_stack: PrivateStack, failed_run: str
) -> None:
    stack: AirflowStack = private_stack.airflow
    path = f"/dags/{DAG}/dagRuns/{quote(failed_run, safe='')}/taskInstances/request_archive/links"
    links = stack.api.json("GET", path)["extra_links"]
    assert links == {
        "Archive submission": f"{stack.sandbox.ingest_url}/archiveSubmissions/search/"
        f"findBySubmissionUuid?submissionUuid={SUBMISSION_UUID}&sort=created,desc",
        # the environment's DSP, not the record's dsp_url (another host)
        "DSP submission": f"{dsp_root(stack.sandbox.dsp_url)}/api/submissions/d5p",
        "LSF job / pod": JOB_URL,
    }
