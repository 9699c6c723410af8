"""The archiver service: triggers archiving, builds the DSP submission and upload plan in the
background, reports validation and blockers, and completes submissions. Guarded by ``Api-Key``."""

from __future__ import annotations

import hmac
import json
import logging
import math
import uuid
from collections.abc import Callable
from typing import Any

from hca_archive.sandbox import dsp
from hca_archive.sandbox.context import Context
from hca_archive.sandbox.filestate import blockers_summary, is_ready, validation_report
from hca_archive.sandbox.ingest import archive_envelope, archive_record_document
from hca_archive.sandbox.store import now_iso
from hca_archive.sandbox.web import (
    HttpError,
    Request,
    Response,
    Router,
    json_response,
    query_int,
    text_response,
)

log = logging.getLogger(__name__)

TRIGGERED = {"message": "successfully triggered!"}
COMPLETE_POLL_SECONDS = 0.2
DEFAULT_ENTITY_PAGE = 20
PLAN_OVERRIDE = "plan_override:{}"
COMPLETE_REQUESTS = "complete_requests:{}"
COMPLETIONS = "completions:{}"
# What the old service (Flask) answers when an upstream call fails, a DSP 404 included.
UPSTREAM_ERROR_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    "<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable "
    "to complete your request. Either the server is overloaded or there is an error in the "
    "application.</p>\n"
)


def error_page() -> Response:
    """The old service's answer to any exception it does not handle (Flask's HTML 500)."""
    return text_response(500, UPSTREAM_ERROR_PAGE, "text/html")


def replace_plan(ctx: Context, submission_uuid: str, jobs: Any) -> int:
    """Serve ``jobs`` (any JSON, hostile included) as the upload plan of the submission's archive
    records, existing and built later; the files DSP expects stay those of the seeded runs.
    Returns how many existing records changed."""
    text = json.dumps(jobs)
    with ctx.store.tx() as db:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (PLAN_OVERRIDE.format(submission_uuid), text),
        )
        return db.execute(
            "UPDATE archive_records SET plan = ? WHERE submission_uuid = ?",
            (text, submission_uuid),
        ).rowcount


def build_archive_submission(ctx: Context, payload: dict[str, Any]) -> None:
    """Background half of ``POST /archiveSubmissions``: DSP submission, entities, plan, record."""
    submission_uuid = payload["submission_uuid"]
    envelope = ctx.store.one("SELECT * FROM envelopes WHERE uuid = ?", (submission_uuid,))
    if envelope is None:
        log.error("archiving %s: no such ingest submission; nothing was created", submission_uuid)
        return
    prefix = payload.get("alias_prefix") or "HCA"
    excluded = set(payload.get("exclude_types") or ())
    dsp_uuid = str(uuid.uuid4())
    entities: list[tuple[str, str, str]] = []  # (uuid, type, alias)

    def add_entity(entity_type: str, key: str) -> str | None:
        if entity_type in excluded:
            return None
        entities.append((str(uuid.uuid4()), entity_type, f"{prefix}_{entity_type}_{key}"))
        return entities[-1][0]

    add_entity("project", submission_uuid)
    add_entity("study", submission_uuid)
    jobs, expected = [], []
    runs = ctx.store.all(
        "SELECT * FROM runs WHERE envelope_uuid = ? ORDER BY position", (submission_uuid,)
    )
    for run in runs:
        add_entity("sample", run["manifest_id"])
        add_entity("sequencingExperiment", run["manifest_id"])
        run_entity = add_entity("sequencingRun", run["manifest_id"])
        if run_entity is None:
            continue
        job, files = _plan_job(ctx, dsp_uuid, run)
        jobs.append(job)
        expected += [
            (dsp_uuid, name, run_entity, kind, reads, md5) for name, kind, reads, md5 in files
        ]
    plan = ctx.store.meta(PLAN_OVERRIDE.format(submission_uuid)) or json.dumps(jobs)
    created = now_iso()
    with ctx.store.tx() as db:
        db.execute(
            "INSERT INTO dsp_submissions (id, envelope_uuid, status, created, updated) "
            "VALUES (?, ?, 'Draft', ?, ?)",
            (dsp_uuid, submission_uuid, created, created),
        )
        db.executemany(
            "INSERT INTO entities (uuid, dsp_uuid, position, type, alias, processing_status) "
            "VALUES (?, ?, ?, ?, ?, 'Draft')",
            [
                (entity, dsp_uuid, n, kind, alias)
                for n, (entity, kind, alias) in enumerate(entities)
            ],
        )
        db.executemany(
            "INSERT INTO expected_files (dsp_uuid, name, entity_uuid, kind, reads, md5) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            expected,
        )
        db.execute(
            "INSERT INTO archive_records (dsp_uuid, submission_uuid, created, plan, errors) "
            "VALUES (?, ?, ?, ?, '[]')",
            (dsp_uuid, submission_uuid, created, plan),
        )
    log.info("archiving %s: DSP submission %s with %d jobs", submission_uuid, dsp_uuid, len(jobs))


def _plan_job(
    ctx: Context, dsp_uuid: str, run: Any
) -> tuple[dict[str, Any], list[tuple[str, str, int, str | None]]]:
    """One plan job for a seeded run and the files DSP will expect (name, kind, reads, md5)."""
    inputs = json.loads(run["inputs"])
    job: dict[str, Any] = {
        "dsp_api_url": ctx.urls.dsp,
        "submission_url": ctx.submission_url(dsp_uuid),
        "manifest_id": run["manifest_id"],
    }
    if run["schema"] is None:
        job["files"] = [
            {"name": i["name"], "read_index": i["read_index"], "cloud_url": _s3_url(ctx, i["key"])}
            for i in inputs
        ]
        return job, [(i["name"], "fastq", i["reads"], i["md5"]) for i in inputs]
    output = f"{run['manifest_id']}_1.bam"
    job["files"] = [{"name": output}]
    job["conversion"] = {
        "output_name": output,
        "schema": run["schema"],
        "inputs": [
            {"name": i["name"], "read_index": i["read_index"], "cloud_url": _s3_url(ctx, i["key"])}
            for i in inputs
        ],
    }
    return job, [(output, "bam", run["reads"], None)]


def _s3_url(ctx: Context, key: str) -> str:
    return f"s3://{ctx.bucket}/{key}"


def complete_submission(
    ctx: Context, payload: dict[str, Any], dies: Callable[[], bool] = lambda: False
) -> None:
    """The background half of ``complete``: wait until ready, submit, wait, write back to ingest.

    With DSP already Completed it only writes back, as the old service does (it submits only a
    Draft). ``dies`` is the ``die_after_dsp_completes`` fault: the work ends before writing back.
    """
    dsp_uuid = payload["dsp_uuid"]
    row = ctx.store.one(
        "SELECT s.status, e.id AS envelope_id FROM dsp_submissions s "
        "JOIN envelopes e ON e.uuid = s.envelope_uuid WHERE s.id = ?",
        (dsp_uuid,),
    )
    if row is None:
        log.error("complete %s: no such DSP submission", dsp_uuid)
        return
    if row["status"] == "Completed":
        if dies():
            log.error("complete %s: DSP Completed; died before writing back (fault)", dsp_uuid)
            return
        archived = archive_envelope(ctx, row["envelope_id"])
        ctx.store.next_number(COMPLETIONS.format(dsp_uuid))
        if archived:
            log.info("complete %s: accessions written back, envelope archived", dsp_uuid)
        else:
            log.error("complete %s: accessions written back, archivedEvent refused", dsp_uuid)
        return
    if row["status"] == "Draft" and is_ready(blockers_summary(ctx, dsp_uuid)):
        dsp.submit(ctx, dsp_uuid)
    # Like the old service, keep polling for as long as it takes.
    ctx.scheduler.schedule("complete", payload, delay=COMPLETE_POLL_SECONDS, key=dsp_uuid)


class ArchiverApi:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def router(self) -> Router:
        router = Router()
        record = r"/archiveSubmissions/(?P<dsp_uuid>[0-9a-f-]{36})"
        router.add("GET", "/", lambda request: Response(200, b"Ingest Archiver is running"))
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("POST", "/archiveSubmissions", self.trigger),
            ("GET", r"/latestArchiveSubmission/(?P<submission_uuid>[^/]+)", self.latest),
            ("GET", record, self.record),
            ("GET", record + "/validationErrors", self.validation_errors),
            ("GET", record + "/blockers", self.blockers),
            ("GET", record + "/fileUploadPlan", self.file_upload_plan),
            ("POST", record + "/complete", self.complete),
            ("GET", record + "/entities", self.entities),
        ]
        for method, pattern, route in routes:
            router.add(method, pattern, self._guarded(route))
        return router

    def _guarded(self, route: Callable[..., Response]) -> Callable[..., Response]:
        def guarded(request: Request, **groups: str) -> Response:
            key = request.headers.get("Api-Key")
            if key is None:
                return json_response(401, {"message": "header missing Api-Key"})
            if not hmac.compare_digest(key.encode(), self._ctx.archiver_api_key.encode()):
                return json_response(401, {"message": "invalid Api-Key"})
            return route(request, **groups)

        return guarded

    def trigger(self, request: Request) -> Response:
        # Flask's get_json() is None unless the Content-Type is JSON; then, as for a JSON body
        # that is no object, the old service's ``data.get`` raises.
        if not request.is_json():
            return error_page()
        body = request.json()
        if not isinstance(body, dict):
            return error_page()
        submission_uuid = body.get("submission_uuid")
        if not isinstance(submission_uuid, str) or not submission_uuid:
            raise HttpError(400, {"message": "submission_uuid is required"})
        exclude_types = body.get("exclude_types") or []
        if not isinstance(exclude_types, list):
            raise HttpError(400, {"message": "exclude_types must be a list"})
        payload = {
            "submission_uuid": submission_uuid,
            "alias_prefix": body.get("alias_prefix") or "HCA",
            "exclude_types": exclude_types,
        }
        self._ctx.scheduler.schedule("build", payload, delay=self._ctx.plan_delay)
        return json_response(200, TRIGGERED)

    def latest(self, request: Request, submission_uuid: str) -> Response:
        row = self._ctx.store.one(
            "SELECT * FROM archive_records WHERE submission_uuid = ? "
            "ORDER BY created DESC, rowid DESC",
            (submission_uuid,),
        )
        if row is None:
            return json_response(404, None)
        return json_response(200, archive_record_document(self._ctx, row))

    def record(self, request: Request, dsp_uuid: str) -> Response:
        row = self._record(dsp_uuid)
        if row is None:
            return error_page()
        return json_response(200, archive_record_document(self._ctx, row))

    def validation_errors(self, request: Request, dsp_uuid: str) -> Response:
        if not self._in_dsp(dsp_uuid):
            return error_page()
        return json_response(200, validation_report(self._ctx, dsp_uuid))

    def blockers(self, request: Request, dsp_uuid: str) -> Response:
        if not self._in_dsp(dsp_uuid):
            return error_page()
        return json_response(200, blockers_summary(self._ctx, dsp_uuid))

    def file_upload_plan(self, request: Request, dsp_uuid: str) -> Response:
        row = self._record(dsp_uuid)
        if row is None:
            return error_page()
        return json_response(
            200,
            {"jobs": json.loads(row["plan"])},
            {"Content-Disposition": f"attachment; filename=FILE_UPLOAD_PLAN_{dsp_uuid}.json"},
        )

    def complete(self, request: Request, dsp_uuid: str) -> Response:
        # Not idempotent, like the old service: every call starts background work of its own.
        self._ctx.store.next_number(COMPLETE_REQUESTS.format(dsp_uuid))
        self._ctx.scheduler.schedule("complete", {"dsp_uuid": dsp_uuid}, key=dsp_uuid)
        return json_response(202, TRIGGERED)

    def entities(self, request: Request, dsp_uuid: str) -> Response:
        if self._record(dsp_uuid) is None:
            return error_page()
        page = query_int(request, "page", 0)
        size = max(1, query_int(request, "size", DEFAULT_ENTITY_PAGE))
        rows = self._ctx.store.all(
            "SELECT * FROM entities WHERE dsp_uuid = ? ORDER BY position", (dsp_uuid,)
        )
        dsp_api = f"{self._ctx.urls.dsp}/api"
        entities = [
            {
                "type": row["type"],
                "alias": row["alias"],
                "dspUuid": row["uuid"],
                "dspUrl": f"{dsp_api}/{dsp.ENTITY_TYPES[row['type']][0]}/{row['uuid']}",
                "accession": row["accession"],
                "errors": [],
            }
            for row in rows[page * size : (page + 1) * size]
        ]
        return json_response(
            200,
            {
                "entities": entities,
                "page": {
                    "number": page,
                    "size": size,
                    "totalElements": len(rows),
                    "totalPages": math.ceil(len(rows) / size),
                },
            },
        )

    def _in_dsp(self, dsp_uuid: str) -> bool:
        """Whether DSP knows the submission; these routes ask DSP, and its 404 is an error."""
        row = self._ctx.store.one("SELECT 1 FROM dsp_submissions WHERE id = ?", (dsp_uuid,))
        return row is not None

    def _record(self, dsp_uuid: str) -> Any:
        """The archive record, or None: these routes ask ingest (``findByDspUuid``), and the old
        service raises its 404 like any upstream error."""
        return self._ctx.store.one("SELECT * FROM archive_records WHERE dsp_uuid = ?", (dsp_uuid,))
