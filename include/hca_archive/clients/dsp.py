"""EBI's submission portal (DSP, also called USI): submissions, status, blockers and files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests

from hca_archive.clients.aap import TokenSource
from hca_archive.clients.hal import embedded_items, iter_pages, links, optional_text, parsed
from hca_archive.http import SUCCESS, JsonHttp, ServiceError, decode_json, segment
from hca_archive.url_credentials import redact_url


def _count(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Blockers:
    """DSP's submission blockers summary (also relayed by the archiver)."""

    not_ready_file_count: int
    total_metadata_blockers: int
    any_pending_validation_result: bool
    empty_submission: bool
    issues_per_type: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any) -> Blockers:
        if not isinstance(doc, Mapping):
            raise ValueError(f"a blockers summary must be a JSON object, got {type(doc).__name__}")
        issues: dict[str, int] = {}
        per_type = doc.get("validationIssuesPerDataTypeId")
        for type_id, issue in per_type.items() if isinstance(per_type, Mapping) else ():
            if isinstance(issue, Mapping):
                issues[str(issue.get("displayName") or type_id)] = _count(issue, "count")
        return cls(
            not_ready_file_count=_count(doc, "notReadyFileCount"),
            total_metadata_blockers=_count(doc, "totalMetadataBlockers"),
            any_pending_validation_result=bool(doc.get("anyPendingValidationResult")),
            empty_submission=bool(doc.get("emptySubmission")),
            issues_per_type=issues,
        )

    @property
    def ready(self) -> bool:
        """Ready to complete: every file ready, no metadata blockers, nothing pending, not empty."""
        return (
            self.not_ready_file_count == 0
            and self.total_metadata_blockers == 0
            and not self.any_pending_validation_result
            and not self.empty_submission
        )

    def summary(self) -> str:
        if self.ready:
            return "ready to complete"
        reasons = []
        if self.empty_submission:
            reasons.append("the submission is empty")
        if self.not_ready_file_count:
            reasons.append(f"{self.not_ready_file_count} file(s) not ready")
        if self.total_metadata_blockers:
            per_type = ", ".join(f"{name}: {n}" for name, n in sorted(self.issues_per_type.items()))
            detail = f" ({per_type})" if per_type else ""
            reasons.append(f"{self.total_metadata_blockers} metadata blocker(s){detail}")
        if self.any_pending_validation_result:
            reasons.append("validation still pending")
        return "not ready: " + "; ".join(reasons)


@dataclass(frozen=True)
class ProcessingStatus:
    """One submitted item's progress; ``accession`` is set once an archive accepted it."""

    submittable_type: str
    alias: str
    status: str
    accession: str | None
    archive: str | None


def dsp_root(base_url: str) -> str:
    """The bare DSP root (``scheme://host[:port]``) from a URL given with or without ``/api/``."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        path = path[: -len("/api")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"DSP URL must be http(s)://host[/api/], got {redact_url(base_url)!r}")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


_NO_FILE = object()  # DSP's 404 to a file search


class _Bearer(requests.auth.AuthBase):
    """Adds the current AAP token to each request (each retry asks the cache again)."""

    def __init__(self, tokens: TokenSource):
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.token()}"
        return request


class DspClient:
    """The DSP routes an archiving run needs, authenticated with AAP tokens."""

    def __init__(
        self, base_url: str, tokens: TokenSource, *, page_size: int = 100, **http_options: Any
    ):
        """``http_options`` go to :class:`JsonHttp` (timeout, retries, backoff ...)."""
        self.root = dsp_root(base_url)
        self.tokens = tokens
        self.page_size = page_size
        self.http = JsonHttp(f"{self.root}/api", auth=_Bearer(tokens), **http_options)

    def __repr__(self) -> str:
        return f"DspClient({redact_url(self.root)!r})"

    @property
    def tus_endpoint(self) -> str:
        """Where data files are uploaded with tus."""
        return f"{self.root}/files/"

    def submission_url(self, submission_id: str) -> str:
        return self.http.url(f"submissions/{segment(submission_id)}")

    def submission(self, submission_id: str) -> dict[str, Any]:
        """The submission document as DSP sends it (HAL links under ``_links``)."""
        return self._json("GET", f"submissions/{segment(submission_id)}")

    def status(self, submission_id: str) -> str:
        """The submission's status: Draft, Submitted, Processing, Completed or Failed."""
        path = f"submissions/{segment(submission_id)}/submissionStatus"
        doc = self._json("GET", path)
        if not isinstance(doc, Mapping) or not isinstance(doc.get("status"), str):
            raise ServiceError("answer has no status", method="GET", url=self.http.url(path))
        return doc["status"]

    def set_status(self, submission_id: str, status: str) -> None:
        """Move the submission to ``status`` (for example "Submitted").

        Setting a status is idempotent in effect, but a repeat after a lost answer is refused
        with 4xx because that transition is no longer available; then the status is read back,
        and the call succeeds when it already is ``status``.
        """
        path = f"submissions/{segment(submission_id)}/submissionStatus"
        try:
            self._json("PATCH", path, json={"status": status})
        except ServiceError as error:
            if error.status is None or not 400 <= error.status < 500:
                raise
            if self.status(submission_id) != status:
                raise

    def blockers(self, submission_id: str) -> Blockers:
        path = f"submissions/{segment(submission_id)}/submissionBlockersSummary"
        return parsed(Blockers.from_json, self._json("GET", path), self.http.url(path))

    def processing_statuses(self, submission_id: str) -> list[ProcessingStatus]:
        """Every item's processing status, across all pages.

        USI serves them only behind the submission's ``processingStatuses`` link (a search,
        ``processingStatuses/search/by-submission?submissionId=<id>``), so the link is followed;
        only its path and query are used, on our DSP root, so the token goes nowhere else.
        """
        path, params = self._linked(submission_id, "processingStatuses")
        docs = self._with_fresh_token(
            lambda: list(
                iter_pages(
                    self.http, path, "processingStatuses", params=params, size=self.page_size
                )
            )
        )
        return [
            ProcessingStatus(
                submittable_type=str(doc.get("submittableType") or ""),
                alias=str(doc.get("alias") or ""),
                status=str(doc.get("status") or ""),
                accession=optional_text(doc.get("accession")),
                archive=optional_text(doc.get("archive")),
            )
            for doc in docs
            if isinstance(doc, Mapping)
        ]

    def find_file(self, submission_id: str, filename: str) -> dict[str, Any] | None:
        """The DSP file document (``filename``, ``totalSize``, ``checksum`` ...) or None.

        None only when DSP says it has no such file: a 404, or a search page without this
        submission's file of that name. Whatever else is not that file's document (a record
        of another submission or file, a 200 without a JSON object) is a ServiceError, so a
        job neither skips an upload for someone else's file nor uploads one again by mistake.
        """
        path = "files/search/by-filename-and-submission"
        url = self.http.url(path)
        params = {"submissionId": submission_id, "filename": filename}

        def call() -> Any:
            response = self.http.request("GET", path, params=params, ok=(*SUCCESS, 404))
            if response.status_code == 404:
                return _NO_FILE
            return decode_json(response)

        doc = self._with_fresh_token(call)
        if doc is _NO_FILE:
            return None

        def other(item: Mapping[str, Any]) -> str | None:
            """What in ``item`` shows it is not this submission's file, if anything."""
            if "submissionId" in item and item["submissionId"] != submission_id:
                return f"submission {item['submissionId']}, not {submission_id}"
            if "filename" in item and item["filename"] != filename:
                return f"file {item['filename']!r}, not {filename!r}"
            return None

        if isinstance(doc, list) or (isinstance(doc, Mapping) and "_embedded" in doc):
            # Some deployments answer a search with a HAL list instead of the document.
            items = [item for item in embedded_items(doc, "files") if isinstance(item, Mapping)]
            return next((dict(item) for item in items if other(item) is None), None)
        if not isinstance(doc, Mapping):
            raise ServiceError(
                f"answer is not a file document: {str(doc)[:80]!r}", method="GET", url=url
            )
        if (problem := other(doc)) is not None:
            raise ServiceError(
                f"searching this submission's file {filename!r}, DSP answered the record of "
                f"{problem}",
                method="GET",
                url=url,
            )
        return dict(doc)

    def _linked(self, submission_id: str, relation: str) -> tuple[str, dict[str, str]]:
        """The submission's ``relation`` link as (path below ``/api``, query parameters)."""
        href = links(self.submission(submission_id)).get(relation)
        if href is None:  # USI's own spelling of the link
            search = f"{relation}/search/by-submission"
            return search, {"submissionId": submission_id}
        parts = urlsplit(re.sub(r"\{[^}]*\}$", "", href))  # drop a template's {?page,size}
        api = urlsplit(self.http.base_url).path.rstrip("/") + "/"
        if not parts.path.startswith(api) or ".." in parts.path.split("/"):
            raise ServiceError(
                f"{relation} link is not below {api}", method="GET", url=self.http.url("")
            )
        params = {k: v for k, v in parse_qsl(parts.query) if k not in ("page", "size", "sort")}
        return parts.path[len(api) :], params

    def _json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        def call() -> Any:
            if method == "GET":
                return self.http.get_json(path, params=params, missing_ok=missing_ok)
            return decode_json(self.http.request(method, path, json=json, params=params))

        return self._with_fresh_token(call)

    def _with_fresh_token(self, call: Any) -> Any:
        """Run ``call``; on 401 (token revoked or expired early) once more with a new token."""
        try:
            return call()
        except ServiceError as error:
            if error.status != 401:
                raise
            self.tokens.invalidate()
            return call()
