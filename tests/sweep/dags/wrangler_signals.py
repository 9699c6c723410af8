"""A test DAG (Airflow) shaped like archive_submission's start, wired with the wrangler's signals.

``request_archive`` carries the extra links and pushes what they read; ``check_metadata`` fails
the way a metadata validation error does; the DAG's failure callbacks send the notifications.
"""

import pendulum
from airflow.sdk import DAG, BaseOperator

from hca_archive.archiving import RunStopped
from hca_archive.orchestration.extra_links import (
    ArchiveSubmissionLink,
    DspSubmissionLink,
    FileJobLink,
    push_file_job_url,
)
from hca_archive.orchestration.notifications import run_notifiers
from hca_archive.orchestration.step_record import recorded_step

SUBMISSION_UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
REASON = "metadata validation failed for DSP submission d5p: biomaterial 1: bad taxon"
ELSEWHERE = "https://dsp.example.org/api/submissions/d5p"  # not the environment's DSP
JOB_URL = "https://lsf.example.org/jobs/4242"


class RequestLike(BaseOperator):
    operator_extra_links = (ArchiveSubmissionLink(), DspSubmissionLink(), FileJobLink())
    template_fields = ("environment", "submission_uuid")

    def __init__(self, *, environment: str, submission_uuid: str, **kwargs):
        super().__init__(**kwargs)
        self.environment = environment
        self.submission_uuid = submission_uuid

    def execute(self, context):
        push_file_job_url(context["ti"], JOB_URL)
        return {"dsp_uuid": "d5p", "dsp_url": ELSEWHERE}


class FailingCheck(BaseOperator):
    def execute(self, context):
        with recorded_step(context):
            raise RunStopped(REASON)


with DAG(
    "wrangler_signals",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    params={
        "submission_uuid": SUBMISSION_UUID,
        "environment": "sandbox",
        "runner": "local",
        "dry_run": False,
    },
    tags=["hca", "test"],
    default_args={"owner": "hca-tests"},
    **run_notifiers(),
):
    request = RequestLike(
        task_id="request_archive",
        environment="{{ params.environment }}",
        submission_uuid="{{ params.submission_uuid }}",
    )
    request >> FailingCheck(task_id="check_metadata")
