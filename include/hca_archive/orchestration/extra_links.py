"""Buttons on a task's page that open what the run made elsewhere.

- ``ArchiveSubmissionLink`` ("Archive submission"): ingest's archive records of the submission
  (readable without credentials), on the task that requests the archive;
- ``DspSubmissionLink`` ("DSP submission"): the DSP submission the ``request_archive`` task
  returns, on the environment's DSP (not the archiver's ``dsp_url``, which could name any host);
- ``FileJobLink`` ("LSF job / pod"): the URL a file-job task pushed under XCom key
  ``file_job_url`` (``push_file_job_url``).

Airflow 3 asks each link for its URL in the worker when the task ends and keeps it in XCom; the
UI reads it from there, so no plugin has to register these. URLs partly come from remote
services: only absolute http(s) URLs become links. A link is kept in XCom and shown to every user
of the UI: the ``user:password@`` a connection's host may hold is left out.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseHook, BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from hca_archive.orchestration.connections import conn_id, service_url

log = logging.getLogger(__name__)

FILE_JOB_URL_XCOM_KEY = "file_job_url"
RETURN_VALUE = "return_value"


def web_url(url: Any) -> str:
    """``url`` if it is an absolute http(s) URL, else "" (no link rather than a bad one)."""
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return url


def archive_records_url(ingest_url: str, submission_uuid: str) -> str:
    query = f"submissionUuid={quote(submission_uuid, safe='')}&sort=created,desc"
    return web_url(f"{ingest_url}/archiveSubmissions/search/findBySubmissionUuid?{query}")


def push_file_job_url(ti: Any, url: str) -> None:
    """For file-job operators: where the wrangler can see the LSF job or the pod.

    The link is a nicety: a template that makes no web address is logged, not raised (the LSF
    runner pushes it after ``bsub``, and every retry would adopt that job and fail again).
    """
    from hca_archive.url_credentials import redact_url

    if not web_url(url):
        log.warning(
            "no %r link: %r is not an absolute http(s) URL; fix the connection's extra "
            "lsf_job_url or job_pod_url",
            FileJobLink.name,
            url,
        )
        return
    ti.xcom_push(key=FILE_JOB_URL_XCOM_KEY, value=redact_url(url))


class ArchiveSubmissionLink(BaseOperatorLink):
    """Needs ``environment`` and ``submission_uuid`` attributes on the operator."""

    name = "Archive submission"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from hca_archive.url_credentials import redact_url

        connection = BaseHook.get_connection(conn_id(operator.environment, "ingest"))
        return archive_records_url(redact_url(service_url(connection)), operator.submission_uuid)


class DspSubmissionLink(BaseOperatorLink):
    """Needs an ``environment`` attribute on the operator."""

    name = "DSP submission"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from hca_archive.clients.dsp import dsp_root
        from hca_archive.url_credentials import redact_url

        record = XCom.get_value(ti_key=ti_key, key=RETURN_VALUE)
        dsp_uuid = record.get("dsp_uuid") if isinstance(record, dict) else None
        if not isinstance(dsp_uuid, str) or not dsp_uuid:
            return ""
        connection = BaseHook.get_connection(conn_id(operator.environment, "dsp"))
        root = dsp_root(redact_url(service_url(connection)))
        return web_url(f"{root}/api/submissions/{quote(dsp_uuid, safe='')}")


class FileJobLink(BaseOperatorLink):
    name = "LSF job / pod"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return web_url(XCom.get_value(ti_key=ti_key, key=FILE_JOB_URL_XCOM_KEY))
