"""DSP (USI) serves processing statuses only behind the submission's HAL link.

services.md: "Submission: `GET /api/submissions/<id>`; HAL links `submissionStatus`,
`validationResults`, `processingStatuses`, `submissionBlockersSummary`, `contents`." USI renders
that link as ``/api/processingStatuses/search/by-submission?submissionId=<id>``
(subs-api SubmissionResourceProcessor.addReceiptLink) and has no
``/api/submissions/<id>/processingStatuses`` route; the old archiver follows the link
(ingest-archiver api/dsp.py get_processing_results).
"""

from __future__ import annotations

import time

import pytest

from hca_archive.clients import AapTokenSource, ArchiverClient, DspClient
from hca_archive.sandbox.process import SandboxInfo

pytestmark = pytest.mark.integration


def test_processing_statuses_follow_the_submissions_link_across_pages(sandbox: SandboxInfo):
    (submission_uuid,) = sandbox.seed(jobs=["plain"], reads=50)
    archiver = ArchiverClient(sandbox.archiver_url, sandbox.archiver_api_key)
    archiver.trigger_archive(submission_uuid)
    deadline = time.monotonic() + 60
    while (record := archiver.latest(submission_uuid)) is None:
        assert time.monotonic() < deadline, "no archive record"
        time.sleep(0.2)
    tokens = AapTokenSource(sandbox.aap_url, sandbox.aap_username, sandbox.aap_password)
    dsp = DspClient(sandbox.dsp_url, tokens, page_size=2)

    statuses = dsp.processing_statuses(record.dsp_uuid)

    entities = archiver.entities(record.dsp_uuid)
    assert sorted(s.alias for s in statuses) == sorted(e.alias for e in entities)
    assert {s.status for s in statuses} == {"Draft"}
