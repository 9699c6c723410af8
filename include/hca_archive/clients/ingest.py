"""The HCA ingest API (HAL JSON, Spring Data REST): submission envelopes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hca_archive.clients.hal import iter_pages, links, optional_text, parsed
from hca_archive.http import JsonHttp
from hca_archive.url_credentials import redact_url

FIND_BY_UUID = "submissionEnvelopes/search/findByUuidUuid"  # sic: ingest doubles "Uuid"
FIND_BY_STATE = "submissionEnvelopes/search/findBySubmissionState"


@dataclass(frozen=True)
class Envelope:
    """A submission envelope; ``state`` as ingest renders it ("Archiving", "Archived", ...)."""

    uuid: str
    state: str
    submission_date: str | None
    update_date: str | None
    links: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Any) -> Envelope:
        if not isinstance(doc, Mapping):
            raise ValueError(f"an envelope must be a JSON object, got {type(doc).__name__}")
        uuid = doc.get("uuid")
        if isinstance(uuid, Mapping):
            uuid = uuid.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise ValueError("envelope has no uuid.uuid")
        return cls(
            uuid=uuid,
            state=str(doc.get("submissionState") or ""),
            submission_date=optional_text(doc.get("submissionDate")),
            update_date=optional_text(doc.get("updateDate")),
            links=links(doc),
        )


class IngestClient:
    """Read-only access to envelopes. The ingest API needs no credentials for these routes."""

    def __init__(self, base_url: str, *, page_size: int = 20, **http_options: Any):
        """``http_options`` go to :class:`JsonHttp` (timeout, retries, backoff ...)."""
        self.http = JsonHttp(base_url, **http_options)
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"IngestClient({redact_url(self.http.base_url)!r})"

    def find_envelope(self, uuid: str) -> Envelope | None:
        """The envelope with this uuid, or None when ingest does not know it."""
        doc = self.http.get_json(
            FIND_BY_UUID,
            params={"uuid": uuid},
            missing_ok=True,
        )
        url = self.http.url(FIND_BY_UUID)
        return None if doc is None else parsed(Envelope.from_json, doc, url)

    def iter_envelopes(self, state: str = "Archiving") -> Iterator[Envelope]:
        """Every envelope in ``state`` (rendered or enum spelling), across all pages.

        Envelopes that change state during the walk shift the pages; a periodic sweep picks up
        any it missed on its next run.
        """
        for doc in iter_pages(
            self.http,
            FIND_BY_STATE,
            "submissionEnvelopes",
            params={"submissionState": state.upper()},
            size=self.page_size,
        ):
            yield parsed(Envelope.from_json, doc, self.http.url(FIND_BY_STATE))
