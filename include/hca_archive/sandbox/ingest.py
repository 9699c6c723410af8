"""The ingest API (HAL JSON as Spring Data REST renders it): envelopes and archive records."""

from __future__ import annotations

import json
import re
from typing import Any

from hca_archive.sandbox.context import Context
from hca_archive.sandbox.store import now_iso
from hca_archive.sandbox.web import (
    HttpError,
    Request,
    Response,
    Router,
    json_response,
    spring_page,
)

ENUM_CONSTANT = re.compile(r"[A-Z][A-Z_]*")


def archive_envelope(ctx: Context, envelope_id: str) -> bool:
    """``PUT archivedEvent``: Archiving -> Archived; False when the envelope is in another state."""
    with ctx.store.tx() as db:
        changed = db.execute(
            "UPDATE envelopes SET state = 'Archived', update_date = ? "
            "WHERE id = ? AND state = 'Archiving'",
            (now_iso(), envelope_id),
        ).rowcount
    return changed == 1


def archive_record_document(ctx: Context, row: Any) -> dict[str, Any]:
    """An archive submission record, as the archiver and ingest both show it."""
    return {
        "created": row["created"],
        "dspUuid": row["dsp_uuid"],
        "dspUrl": ctx.submission_url(row["dsp_uuid"]),
        "submissionUuid": row["submission_uuid"],
        "fileUploadPlan": json.loads(row["plan"]),
        "errors": json.loads(row["errors"]),
    }


class IngestApi:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def router(self) -> Router:
        router = Router()
        envelopes = "/submissionEnvelopes"
        router.add("GET", envelopes + "/search/findByUuidUuid", self.find_by_uuid)
        router.add("GET", envelopes + "/search/findBySubmissionState", self.find_by_state)
        router.add("GET", envelopes + r"/(?P<envelope_id>[0-9a-f]{24})", self.envelope)
        router.add(
            "PUT", envelopes + r"/(?P<envelope_id>[0-9a-f]{24})/archivedEvent", self.archived
        )
        router.add("GET", "/archiveSubmissions/search/findBySubmissionUuid", self.archive_records)
        return router

    def find_by_uuid(self, request: Request) -> Response:
        row = self._ctx.store.one(
            "SELECT * FROM envelopes WHERE uuid = ?", (request.query.get("uuid", ""),)
        )
        if row is None:
            return Response(404)
        return json_response(200, self._document(row))

    def find_by_state(self, request: Request) -> Response:
        # Spring converts the parameter to the SubmissionState enum by its exact constant name
        # (ARCHIVING, trimmed; empty is null); the rendered "Archiving" fails the conversion,
        # which Spring Data REST answers with a 500.
        state = request.query.get("submissionState", "").strip()
        if state and not ENUM_CONSTANT.fullmatch(state):
            raise HttpError(
                500,
                {
                    "cause": None,
                    "message": "Failed to convert from type [java.lang.String] to type "
                    "[@org.springframework.data.repository.query.Param "
                    f"org.humancellatlas.ingest.state.SubmissionState] for value '{state}'",
                },
            )
        rows = self._ctx.store.all(
            "SELECT * FROM envelopes WHERE upper(state) = ? ORDER BY submission_date, id",
            (state,),
        )
        base = f"{self._ctx.urls.ingest}/submissionEnvelopes/search/findBySubmissionState"
        documents = [self._document(row) for row in rows]
        return json_response(200, spring_page(request, "submissionEnvelopes", documents, base))

    def envelope(self, request: Request, envelope_id: str) -> Response:
        return json_response(200, self._document(self._envelope(envelope_id)))

    def archived(self, request: Request, envelope_id: str) -> Response:
        row = self._envelope(envelope_id)
        if not archive_envelope(self._ctx, envelope_id):
            raise HttpError(
                409, {"message": f"envelope is {row['state']}: only Archiving can become Archived"}
            )
        return json_response(202, self._document(self._envelope(envelope_id)))

    def archive_records(self, request: Request) -> Response:
        # Newest first only with sort=created,desc; unsorted, MongoDB answers in insertion order.
        field, _, direction = request.query.get("sort", "").partition(",")
        order = "rowid"
        if field == "created":
            order = "created DESC, rowid DESC" if direction.lower() == "desc" else "created, rowid"
        rows = self._ctx.store.all(
            f"SELECT * FROM archive_records WHERE submission_uuid = ? ORDER BY {order}",  # noqa: S608 - order is one of three literals
            (request.query.get("submissionUuid", ""),),
        )
        records = [archive_record_document(self._ctx, row) for row in rows]
        return json_response(200, {"_embedded": {"archiveSubmissions": records}})

    def _envelope(self, envelope_id: str) -> Any:
        row = self._ctx.store.one("SELECT * FROM envelopes WHERE id = ?", (envelope_id,))
        if row is None:
            raise HttpError(404, {"message": f"no submission envelope {envelope_id}"})
        return row

    def _document(self, row: Any) -> dict[str, Any]:
        url = f"{self._ctx.urls.ingest}/submissionEnvelopes/{row['id']}"
        links = {"self": {"href": url}, "submissionEnvelope": {"href": url}}
        if row["state"] == "Archiving":
            links["archived"] = {"href": f"{url}/archivedEvent"}
        return {
            "uuid": {"uuid": row["uuid"]},
            "submissionState": row["state"],
            "submissionDate": row["submission_date"],
            "updateDate": row["update_date"],
            "_links": links,
        }
