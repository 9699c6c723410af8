"""The HCA ingest archiver service: trigger archiving, read its records, reports and upload plan."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hca_archive.clients.dsp import Blockers
from hca_archive.clients.hal import iter_pages, optional_text, parsed
from hca_archive.http import JsonHttp, decode_json, one_line, segment
from hca_archive.url_credentials import redact_url

# The DSP FileReference validator's message while a referenced data file is not uploaded yet
# (sic: "is not exists").
MISSING_FILE = re.compile(
    r"referenced in the metadata is not exists on the file storage area", re.I
)


ERROR_TEXT_LIMIT = 500


@dataclass(frozen=True)
class ArchiveError:
    error_code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        """One line for a wrangler; the service's text is untrusted, so it is bounded."""
        text = f"{self.error_code}: {self.message}" if self.error_code else self.message
        return one_line(text, ERROR_TEXT_LIMIT) or "(no message)"


def archive_errors(value: Any) -> tuple[ArchiveError, ...]:
    """The archiver's ``errors`` list; an entry that is not an object is kept as its text, and
    empty entries (null, "", {}) are no errors."""
    return tuple(
        ArchiveError(
            error_code=str(error.get("errorCode") or ""),
            message=str(error.get("message") or ""),
            details=error.get("details") if isinstance(error.get("details"), Mapping) else {},
        )
        if isinstance(error, Mapping)
        else ArchiveError("", str(error))
        for error in _list(value)
        if error not in (None, "", {})
    )


@dataclass(frozen=True)
class ArchiveSubmission:
    """The archiver's record of one DSP submission made for an ingest submission.

    ``file_upload_plan`` is the raw, untrusted job list: validate it with
    :func:`hca_archive.plan.parse_plan` before use.
    """

    dsp_uuid: str
    dsp_url: str | None
    submission_uuid: str | None
    created: str | None
    file_upload_plan: tuple[Any, ...]
    errors: tuple[ArchiveError, ...]

    @classmethod
    def from_json(cls, doc: Any) -> ArchiveSubmission:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("dspUuid"), str):
            raise ValueError("archive submission record has no dspUuid")
        plan = doc.get("fileUploadPlan")
        if isinstance(plan, Mapping):  # tolerate the {"jobs": [...]} spelling
            plan = plan.get("jobs")
        return cls(
            dsp_uuid=doc["dspUuid"],
            dsp_url=optional_text(doc.get("dspUrl")),
            submission_uuid=optional_text(doc.get("submissionUuid")),
            created=optional_text(doc.get("created")),
            file_upload_plan=tuple(plan) if isinstance(plan, list) else (),
            errors=archive_errors(doc.get("errors")),
        )


@dataclass(frozen=True)
class ValidationIssue:
    subject: str  # the submittable's URL, or "NoSubmittable"
    validator: str
    message: str

    @property
    def missing_file(self) -> bool:
        return bool(MISSING_FILE.search(self.message))


@dataclass(frozen=True)
class ValidationReport:
    """DSP validation errors as relayed by the archiver (warnings also come as errors).

    Missing-file errors (FileReference: "... referenced in the metadata is not exists on the file
    storage area") are expected until the data files are uploaded. Every other message (metadata
    validators, but also FileContent on an uploaded file) counts in ``metadata_errors``: no
    upload of the missing files fixes it.
    """

    issues: tuple[ValidationIssue, ...]
    pending: tuple[Any, ...]

    @classmethod
    def from_json(cls, doc: Any) -> ValidationReport:
        if not isinstance(doc, Mapping):
            raise ValueError(f"validation report must be a JSON object, got {type(doc).__name__}")
        errors = doc.get("errors") or {}
        if not isinstance(errors, Mapping):
            raise ValueError(
                f"validation errors must be a JSON object, got {type(errors).__name__}"
            )
        issues = [
            ValidationIssue(str(subject), validator, message)
            for subject, results in errors.items()
            for validator, message in _messages(results)
        ]
        pending = doc.get("pending") or []
        return cls(tuple(issues), tuple(pending) if isinstance(pending, list) else (pending,))

    @property
    def file_reference_errors(self) -> tuple[ValidationIssue, ...]:
        return tuple(issue for issue in self.issues if issue.missing_file)

    @property
    def metadata_errors(self) -> tuple[ValidationIssue, ...]:
        return tuple(issue for issue in self.issues if not issue.missing_file)

    @property
    def clean(self) -> bool:
        return not self.issues and not self.pending

    def summary(self, limit: int = 20, names: Mapping[str, str] | None = None) -> str:
        """A few lines for a wrangler: counts, then up to ``limit`` errors besides missing files,
        each subject (a DSP URL) after its name in ``names`` where it has one."""
        if self.clean:
            return "validation clean"
        lines = [
            f"{len(self.metadata_errors)} error(s) uploading cannot fix, "
            f"{len(self.file_reference_errors)} data file(s) not uploaded yet, "
            f"{len(self.pending)} result(s) pending"
        ]
        for issue in self.metadata_errors[:limit]:
            subject = one_line(issue.subject, 120)
            if name := (names or {}).get(issue.subject):
                subject = f"{one_line(name, 120)} ({subject})"
            lines.append(f"- {subject}: {issue.validator}: {issue.message}")
        if len(self.metadata_errors) > limit:
            lines.append(f"- ... and {len(self.metadata_errors) - limit} more")
        return "\n".join(lines)


def _messages(results: Any) -> Iterator[tuple[str, str]]:
    """(validator, message) pairs from ``[{validator: [messages]}]`` (also a bare mapping)."""
    for result in results if isinstance(results, list) else [results]:
        if not isinstance(result, Mapping):
            yield "", one_line(str(result))
            continue
        for validator, messages in result.items():
            for message in messages if isinstance(messages, list) else [messages]:
                yield one_line(str(validator), 120), one_line(str(message), 1000)


@dataclass(frozen=True)
class ArchiveEntity:
    type: str
    alias: str
    dsp_uuid: str | None
    accession: str | None
    errors: tuple[ArchiveError, ...]


class ArchiverClient:
    """Client of the archiver; the API key goes in the ``Api-Key`` header and nowhere else."""

    def __init__(self, base_url: str, api_key: str, *, page_size: int = 100, **http_options: Any):
        """``http_options`` go to :class:`JsonHttp` (timeout, retries, backoff ...)."""
        if not api_key:
            raise ValueError("the archiver needs an API key")
        self.http = JsonHttp(base_url, headers={"Api-Key": api_key}, **http_options)
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"ArchiverClient({redact_url(self.http.base_url)!r})"

    def trigger_archive(
        self,
        submission_uuid: str,
        alias_prefix: str = "HCA",
        exclude_types: list[str] | None = None,
    ) -> str:
        """Ask the archiver to build a DSP submission; answers at once, the work runs after.

        Each call creates another DSP submission, so this is sent as non-idempotent: it is
        repeated only if the connection was never made. After a 5xx or a timeout it is up to the
        caller to look for the record (``latest``) before triggering again.
        """
        body: dict[str, Any] = {"submission_uuid": submission_uuid, "alias_prefix": alias_prefix}
        if exclude_types:
            body["exclude_types"] = list(exclude_types)
        response = self.http.request("POST", "archiveSubmissions", json=body, idempotent=False)
        return _message(decode_json(response))

    def latest(self, submission_uuid: str) -> ArchiveSubmission | None:
        """The newest record for an ingest submission, or None while there is none."""
        path = f"latestArchiveSubmission/{segment(submission_uuid)}"
        doc = self.http.get_json(path, missing_ok=True)
        return None if doc is None else self._record(doc, path)

    def get(self, dsp_uuid: str) -> ArchiveSubmission:
        path = f"archiveSubmissions/{segment(dsp_uuid)}"
        return self._record(self.http.get_json(path), path)

    def validation_errors(self, dsp_uuid: str) -> ValidationReport:
        path = f"archiveSubmissions/{segment(dsp_uuid)}/validationErrors"
        return parsed(ValidationReport.from_json, self.http.get_json(path), self.http.url(path))

    def blockers(self, dsp_uuid: str) -> Blockers:
        path = f"archiveSubmissions/{segment(dsp_uuid)}/blockers"
        return parsed(Blockers.from_json, self.http.get_json(path), self.http.url(path))

    def file_upload_plan(self, dsp_uuid: str) -> Any:
        """The upload plan JSON (``{"jobs": [...]}``), unvalidated; sent as an attachment."""
        return self.http.get_json(f"archiveSubmissions/{segment(dsp_uuid)}/fileUploadPlan")

    def complete(self, dsp_uuid: str) -> str:
        """Ask the archiver to submit to DSP and finish; it reports nothing back.

        Sent as non-idempotent: a second call starts a second background completion. Check the
        DSP status before calling again.
        """
        path = f"archiveSubmissions/{segment(dsp_uuid)}/complete"
        return _message(decode_json(self.http.request("POST", path, idempotent=False)))

    def entities(self, dsp_uuid: str) -> list[ArchiveEntity]:
        """The archive entities of a DSP submission, across all pages."""
        path = f"archiveSubmissions/{segment(dsp_uuid)}/entities"
        return [
            ArchiveEntity(
                type=str(doc.get("type") or ""),
                alias=str(doc.get("alias") or ""),
                dsp_uuid=optional_text(doc.get("dspUuid")),
                accession=optional_text(doc.get("accession")),
                errors=archive_errors(doc.get("errors")),
            )
            for doc in iter_pages(self.http, path, "entities", size=self.page_size)
            if isinstance(doc, Mapping)
        ]

    def _record(self, doc: Any, path: str) -> ArchiveSubmission:
        return parsed(ArchiveSubmission.from_json, doc, self.http.url(path))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _message(doc: Any) -> str:
    return one_line(str(doc.get("message", ""))) if isinstance(doc, Mapping) else ""
