"""The DSP (USI) submission API: submissions, statuses, blockers, processing, files (AAP auth)."""

from __future__ import annotations

import json
import time
from typing import Any

from hca_archive.sandbox.context import Context
from hca_archive.sandbox.filestate import (
    blockers_summary,
    content_error_message,
    file_document,
    file_states,
    is_ready,
    missing_file_message,
)
from hca_archive.sandbox.store import now_iso
from hca_archive.sandbox.tus import TusEndpoint
from hca_archive.sandbox.web import (
    HttpError,
    Request,
    Response,
    Router,
    json_response,
    spring_page,
)

# archive entity type -> (DSP collection, submittable type, accession prefix, first number)
ENTITY_TYPES: dict[str, tuple[str, str, str, int]] = {
    "project": ("projects", "Project", "S-BSST", 100),
    "study": ("studies", "Study", "ERP", 120_000),
    "sample": ("samples", "Sample", "SAMEA", 7_000_000),
    "sequencingExperiment": ("assays", "Assay", "ERX", 4_000_000),
    "sequencingRun": ("assayData", "AssayData", "ERR", 4_000_000),
}
REJECT = "reject:{}"  # ingest submission uuid -> archive entity types the archives reject


def new_accession(ctx: Context, entity_type: str) -> str:
    _, _, prefix, first = ENTITY_TYPES[entity_type]
    return f"{prefix}{first + ctx.store.next_number(f'accession:{prefix}')}"


def set_status(ctx: Context, dsp_uuid: str, status: str, processing: str | None = None) -> None:
    with ctx.store.tx() as db:
        db.execute(
            "UPDATE dsp_submissions SET status = ?, updated = ? WHERE id = ?",
            (status, now_iso(), dsp_uuid),
        )
        if processing:
            db.execute(
                "UPDATE entities SET processing_status = ? WHERE dsp_uuid = ?",
                (processing, dsp_uuid),
            )


def available_statuses(ctx: Context, dsp_uuid: str, status: str) -> list[str]:
    if status == "Draft" and is_ready(blockers_summary(ctx, dsp_uuid)):
        return ["Submitted"]
    return []


def submit(ctx: Context, dsp_uuid: str) -> bool:
    """Draft -> Submitted; then Processing and Completed, each ``process_delay`` later.

    Only from Draft, in one transaction: of two callers that both saw Draft (two background
    completions), one submits; a second submit would have moved a Completed submission back to
    Submitted and started its processing again. False when it had already left Draft."""
    with ctx.store.tx() as db:
        submitted = db.execute(
            "UPDATE dsp_submissions SET status = 'Submitted', updated = ? "
            "WHERE id = ? AND status = 'Draft'",
            (now_iso(), dsp_uuid),
        ).rowcount
        if submitted:
            db.execute(
                "UPDATE entities SET processing_status = 'Submitted' WHERE dsp_uuid = ?",
                (dsp_uuid,),
            )
    if submitted:
        ctx.scheduler.schedule("process", {"dsp_uuid": dsp_uuid}, delay=ctx.process_delay)
    return bool(submitted)


def process(ctx: Context, payload: dict[str, Any]) -> None:
    """Submitted -> Processing (the items are with the archives), then the archives decide:
    an accepted item gets its accession; the submission is Completed when every item was
    accepted, and stays Processing for good when one was Rejected (see ``REJECT``)."""
    dsp_uuid = payload["dsp_uuid"]
    row = ctx.store.one(
        "SELECT status, envelope_uuid FROM dsp_submissions WHERE id = ?", (dsp_uuid,)
    )
    if row is None:
        return
    if row["status"] == "Submitted":
        set_status(ctx, dsp_uuid, "Processing", processing="Processing")
        ctx.scheduler.schedule("process", payload, delay=ctx.process_delay)
        return
    rejected_types = set(json.loads(ctx.store.meta(REJECT.format(row["envelope_uuid"])) or "[]"))
    entities = ctx.store.all("SELECT uuid, type FROM entities WHERE dsp_uuid = ?", (dsp_uuid,))
    accepted = [entity for entity in entities if entity["type"] not in rejected_types]
    accessions = [(new_accession(ctx, entity["type"]), entity["uuid"]) for entity in accepted]
    rejected = [(entity["uuid"],) for entity in entities if entity["type"] in rejected_types]
    with ctx.store.tx() as db:
        db.executemany(
            "UPDATE entities SET accession = ?, processing_status = 'Completed' WHERE uuid = ?",
            accessions,
        )
        db.executemany(
            "UPDATE entities SET processing_status = 'Rejected' WHERE uuid = ?", rejected
        )
    if not rejected:
        set_status(ctx, dsp_uuid, "Completed")


class DspApi:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def router(self) -> Router:
        router = Router()
        sub = r"/api/submissions/(?P<dsp_uuid>[0-9a-f-]{36})"
        router.add("GET", r"/api/?", self.root)
        router.add("GET", sub, self.submission)
        router.add("GET", sub + "/submissionStatus", self.status)
        router.add("PATCH", sub + "/submissionStatus", self.change_status)
        router.add("PUT", sub + "/submissionStatus", self.change_status)
        router.add("GET", sub + "/availableSubmissionStatuses", self.available)
        router.add("GET", sub + "/submissionBlockersSummary", self.blockers)
        # USI has no /submissions/<id>/processingStatuses: the submission links the search below.
        router.add("GET", r"/api/processingStatuses/search/by-submission", self.processing_statuses)
        router.add("GET", sub + "/validationResults", self.validation_results)
        router.add("GET", sub + "/contents", self.contents)
        router.add("GET", sub + r"/contents/(?P<collection>\w+)", self.contents_of)
        router.add("GET", r"/api/files/search/by-filename-and-submission", self.find_file)
        TusEndpoint(self._ctx).register(router)
        return router

    def root(self, request: Request) -> Response:
        links = {"submissions": {"href": f"{self._ctx.urls.dsp}/api/submissions"}}
        return json_response(200, {"_links": links})

    def submission(self, request: Request, dsp_uuid: str) -> Response:
        row = self._submission(request, dsp_uuid)
        url = self._ctx.submission_url(dsp_uuid)
        links = {
            name: {"href": f"{url}/{name}"}
            for name in (
                "submissionStatus",
                "validationResults",
                "submissionBlockersSummary",
                "contents",
            )
        }
        # As USI renders it (SubmissionResourceProcessor.addReceiptLink): a search resource.
        search = f"{self._ctx.urls.dsp}/api/processingStatuses/search/by-submission"
        links["processingStatuses"] = {"href": f"{search}?submissionId={dsp_uuid}"}
        return json_response(
            200,
            {
                "id": dsp_uuid,
                "submitter": {"email": "hca-archiver@sandbox.invalid"},
                "team": {"name": "subs.team-hca"},
                "createdDate": row["created"],
                "lastModifiedDate": row["updated"],
                "_links": {"self": {"href": url}, **links},
            },
        )

    def status(self, request: Request, dsp_uuid: str) -> Response:
        row = self._submission(request, dsp_uuid)
        return json_response(200, self._status_document(dsp_uuid, row["status"]))

    def change_status(self, request: Request, dsp_uuid: str) -> Response:
        row = self._submission(request, dsp_uuid)
        if not request.is_json():
            content_type = request.headers.get("Content-Type", "application/octet-stream")
            raise HttpError(
                415,
                {
                    "status": 415,
                    "error": "Unsupported Media Type",
                    "message": f"Content type '{content_type}' not supported",
                    "path": request.path,
                },
            )
        body = request.json()
        wanted = body.get("status") if isinstance(body, dict) else None
        # submit() is the change itself; False when another request submitted it meanwhile
        if wanted not in available_statuses(self._ctx, dsp_uuid, row["status"]) or not submit(
            self._ctx, dsp_uuid
        ):
            raise HttpError(
                400,
                {
                    "status": 400,
                    "error": "Bad Request",
                    "message": f"status cannot change from {row['status']} to {wanted}",
                },
            )
        return json_response(200, self._status_document(dsp_uuid, "Submitted"))

    def available(self, request: Request, dsp_uuid: str) -> Response:
        row = self._submission(request, dsp_uuid)
        names = available_statuses(self._ctx, dsp_uuid, row["status"])
        descriptions = [{"statusName": name} for name in names]
        return json_response(200, {"_embedded": {"statusDescriptions": descriptions}})

    def blockers(self, request: Request, dsp_uuid: str) -> Response:
        self._submission(request, dsp_uuid)
        return json_response(200, blockers_summary(self._ctx, dsp_uuid))

    def processing_statuses(self, request: Request) -> Response:
        dsp_uuid = request.query.get("submissionId", "")
        self._submission(request, dsp_uuid)
        items = [
            {
                "id": row["uuid"],
                "submissionId": dsp_uuid,
                "submittableId": row["uuid"],
                "submittableType": ENTITY_TYPES[row["type"]][1],
                "alias": row["alias"],
                "status": row["processing_status"],
                "accession": row["accession"],
            }
            for row in self._entities(dsp_uuid)
        ]
        search = f"{self._ctx.urls.dsp}{request.path}"
        return json_response(200, spring_page(request, "processingStatuses", items, search))

    def validation_results(self, request: Request, dsp_uuid: str) -> Response:
        self._submission(request, dsp_uuid)
        by_run: dict[str, dict[str, Any]] = {}
        runs_url = f"{self._ctx.urls.dsp}/api/sequencingRuns"
        for file in file_states(self._ctx.store, dsp_uuid):
            result = by_run.setdefault(
                file.entity_uuid,
                {
                    "submittableHref": f"{runs_url}/{file.entity_uuid}",
                    "validationStatus": "Complete",
                    "errorMessages": {},
                },
            )
            if file.state == "pending":
                result["validationStatus"] = "Pending"
            elif file.state == "missing":
                message = missing_file_message(file.name)
                result["errorMessages"].setdefault("FileReference", []).append(message)
            elif file.state == "failed":
                message = content_error_message(file.name, file.error)
                result["errorMessages"].setdefault("FileContent", []).append(message)
        return json_response(200, _page("validationResults", list(by_run.values())))

    def contents(self, request: Request, dsp_uuid: str) -> Response:
        self._submission(request, dsp_uuid)
        url = self._ctx.submission_url(dsp_uuid)
        links = {
            collection: {"href": f"{url}/contents/{collection}"}
            for collection, _, _, _ in ENTITY_TYPES.values()
        }
        return json_response(200, {"_links": links})

    def contents_of(self, request: Request, dsp_uuid: str, collection: str) -> Response:
        self._submission(request, dsp_uuid)
        wanted = [name for name, spec in ENTITY_TYPES.items() if spec[0] == collection]
        if not wanted:
            raise HttpError(404, {"message": f"no such content type: {collection}"})
        items = [
            {"id": row["uuid"], "alias": row["alias"], "accession": row["accession"]}
            for row in self._entities(dsp_uuid)
            if row["type"] == wanted[0]
        ]
        return json_response(200, _page(collection, items))

    def find_file(self, request: Request) -> Response:
        _authorise(self._ctx, request)
        submission_id = request.query.get("submissionId", "")
        filename = request.query.get("filename", "")
        if not submission_id or not filename:
            raise HttpError(400, {"message": "submissionId and filename are both required"})
        document = file_document(self._ctx, submission_id, filename)
        if document is None:
            raise HttpError(404, {"status": 404, "error": "Not Found", "message": "no such file"})
        return json_response(200, document)

    def _submission(self, request: Request, dsp_uuid: str):
        _authorise(self._ctx, request)
        row = self._ctx.store.one("SELECT * FROM dsp_submissions WHERE id = ?", (dsp_uuid,))
        if row is None:
            raise HttpError(
                404, {"status": 404, "error": "Not Found", "message": "no such submission"}
            )
        return row

    def _entities(self, dsp_uuid: str):
        return self._ctx.store.all(
            "SELECT * FROM entities WHERE dsp_uuid = ? ORDER BY position", (dsp_uuid,)
        )

    def _status_document(self, dsp_uuid: str, status: str) -> dict[str, Any]:
        url = self._ctx.submission_url(dsp_uuid)
        return {
            "status": status,
            "_links": {
                "self": {"href": f"{url}/submissionStatus"},
                "availableStatuses": {"href": f"{url}/availableSubmissionStatuses"},
            },
        }


def _authorise(ctx: Context, request: Request) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    problem = (
        "Full authentication is required to access this resource"
        if scheme.lower() != "bearer" or not token
        else ctx.tokens.problem(token.strip())
    )
    if problem:
        raise HttpError(
            401,
            {
                "timestamp": int(time.time() * 1000),
                "status": 401,
                "error": "Unauthorized",
                "message": problem,
                "path": request.path,
            },
        )


def _page(name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "_embedded": {name: items},
        "page": {"size": len(items), "totalElements": len(items), "totalPages": 1, "number": 0},
    }
