"""The admin API: seeding, a summary of what happened, fault settings, and bad data on demand
(a hostile upload plan, an envelope in another state, items the archives reject). Never faulted."""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from typing import Any

from hca_archive.sandbox.archiver import COMPLETE_REQUESTS, COMPLETIONS, replace_plan
from hca_archive.sandbox.context import Context
from hca_archive.sandbox.dsp import ENTITY_TYPES, REJECT
from hca_archive.sandbox.faults import FaultBoard, FaultSpecError
from hca_archive.sandbox.filestate import file_states
from hca_archive.sandbox.seeding import Seeder, SeedError, SeedRequest
from hca_archive.sandbox.store import now_iso
from hca_archive.sandbox.web import HttpError, Request, Response, Router, json_response

SUBMISSION = r"/submissions/(?P<submission_uuid>[0-9a-f-]{36})"
STATE = re.compile(r"[A-Za-z]{1,32}")


def summary(ctx: Context) -> dict[str, Any]:
    """Per ingest submission: its envelope state, jobs, and each DSP submission with its files."""
    store = ctx.store
    runs: defaultdict[str, list[str]] = defaultdict(list)
    for run in store.all("SELECT envelope_uuid, kind FROM runs ORDER BY position"):
        runs[run["envelope_uuid"]].append(run["kind"])
    dsp_by_envelope: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in store.all("SELECT * FROM dsp_submissions ORDER BY created, rowid"):
        dsp_by_envelope[row["envelope_uuid"]].append(_dsp_summary(ctx, row))
    return {
        "submissions": [
            {
                "uuid": row["uuid"],
                "envelope_state": row["state"],
                "jobs": runs[row["uuid"]],
                "dsp_submissions": dsp_by_envelope[row["uuid"]],
            }
            for row in store.all("SELECT * FROM envelopes ORDER BY submission_date, rowid")
        ]
    }


def _dsp_summary(ctx: Context, row: Any) -> dict[str, Any]:
    dsp_uuid = row["id"]
    states = {state.name: state for state in file_states(ctx.store, dsp_uuid)}
    counts = ctx.store.all(
        "SELECT name, COUNT(*) AS created, COUNT(completed) AS completed, "
        "MAX(CASE WHEN check_state = 'ok' THEN md5 END) AS md5, "
        "SUM(offset) AS received, MAX(CASE WHEN completed IS NOT NULL THEN length END) AS bytes "
        "FROM uploads WHERE dsp_uuid = ? GROUP BY name",
        (dsp_uuid,),
    )
    by_name = {count["name"]: count for count in counts}
    files = []
    for name in sorted(set(states) | set(by_name)):
        count = by_name.get(name)
        created, completed = (count["created"], count["completed"]) if count else (0, 0)
        received, size = (count["received"], count["bytes"]) if count else (0, None)
        state = states.get(name)
        files.append(
            {
                "name": name,
                "planned": state is not None,
                "state": state.state if state else "unplanned",
                "error": state.error if state else None,
                "md5": count["md5"] if count else None,
                "uploads_created": created,
                "uploads_completed": completed,
                "uploaded_exactly_once": created == 1 and completed == 1,
                # Bytes DSP received over every upload of the name; equal to ``bytes`` (the
                # completed upload's length) when no byte was sent twice.
                "bytes_received": received,
                "bytes": size,
            }
        )
    entities = ctx.store.all(
        "SELECT type, alias, accession, processing_status FROM entities "
        "WHERE dsp_uuid = ? ORDER BY position",
        (dsp_uuid,),
    )
    return {
        "id": dsp_uuid,
        "status": row["status"],
        "created": row["created"],
        "files": files,
        "accessions": {e["alias"]: e["accession"] for e in entities if e["accession"]},
        "entities": [dict(e) for e in entities],
        # ``complete`` calls received, and their background runs that went to the end (wrote
        # back and sent archivedEvent); each call runs on its own, as in the old service.
        "complete_requests": int(ctx.store.meta(COMPLETE_REQUESTS.format(dsp_uuid)) or 0),
        "completions": int(ctx.store.meta(COMPLETIONS.format(dsp_uuid)) or 0),
    }


class AdminApi:
    def __init__(self, ctx: Context, seeder: Seeder, faults: FaultBoard) -> None:
        self._ctx = ctx
        self._seeder = seeder
        self._faults = faults
        self._seeding = threading.Lock()

    def router(self) -> Router:
        router = Router()
        router.add("POST", "/seed", self.seed)
        router.add("GET", "/summary", lambda request: json_response(200, summary(self._ctx)))
        router.add("GET", "/faults", self.faults)
        router.add("PUT", r"/faults/(?P<service>\w+)", self.set_faults)
        router.add("DELETE", "/faults", self.clear_faults)
        router.add("PUT", SUBMISSION + "/plan", self.set_plan)
        router.add("PUT", SUBMISSION + "/state", self.set_state)
        router.add("PUT", SUBMISSION + "/rejections", self.set_rejections)
        return router

    def seed(self, request: Request) -> Response:
        try:
            seed_request = SeedRequest.from_json(request.json())
            with self._seeding:
                submissions = self._seeder.seed(seed_request)
        except SeedError as error:
            raise HttpError(400, {"message": str(error)}) from None
        return json_response(200, {"submissions": submissions})

    def faults(self, request: Request) -> Response:
        return json_response(200, self._faults.snapshot())

    def set_faults(self, request: Request, service: str) -> Response:
        knobs = request.json()
        if not isinstance(knobs, dict):
            raise HttpError(400, {"message": "the fault settings must be a JSON object"})
        try:
            self._faults.set(service, knobs)
        except FaultSpecError as error:
            raise HttpError(400, {"message": str(error)}) from None
        return json_response(200, self._faults.snapshot())

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return json_response(200, self._faults.snapshot())

    def set_plan(self, request: Request, submission_uuid: str) -> Response:
        """``{"jobs": <anything>}``: the plan served for this submission from now on."""
        body = request.json()
        if not isinstance(body, dict) or set(body) != {"jobs"}:
            raise HttpError(400, {"message": 'the plan must be a JSON object {"jobs": ...}'})
        self._envelope(submission_uuid)
        changed = replace_plan(self._ctx, submission_uuid, body["jobs"])
        return json_response(200, {"records_changed": changed})

    def set_state(self, request: Request, submission_uuid: str) -> Response:
        """``{"state": "Draft"}``: move the envelope to any state, as ingest's own flow would."""
        body = request.json()
        state = body.get("state") if isinstance(body, dict) else None
        if not isinstance(state, str) or not STATE.fullmatch(state):
            raise HttpError(400, {"message": "state must be a word of letters, like Draft"})
        self._envelope(submission_uuid)
        with self._ctx.store.tx() as db:
            db.execute(
                "UPDATE envelopes SET state = ?, update_date = ? WHERE uuid = ?",
                (state, now_iso(), submission_uuid),
            )
        return json_response(200, {"uuid": submission_uuid, "state": state})

    def set_rejections(self, request: Request, submission_uuid: str) -> Response:
        """``{"types": ["sample"]}``: the archives reject items of these types from now on."""
        body = request.json()
        types = body.get("types") if isinstance(body, dict) else None
        if not isinstance(types, list) or not all(kind in ENTITY_TYPES for kind in types):
            raise HttpError(400, {"message": f"types must be a list of {', '.join(ENTITY_TYPES)}"})
        self._envelope(submission_uuid)
        self._ctx.store.set_meta(REJECT.format(submission_uuid), json.dumps(sorted(set(types))))
        return json_response(200, {"uuid": submission_uuid, "types": sorted(set(types))})

    def _envelope(self, submission_uuid: str) -> None:
        if (
            self._ctx.store.one("SELECT 1 FROM envelopes WHERE uuid = ?", (submission_uuid,))
            is None
        ):
            raise HttpError(404, {"message": f"no ingest submission {submission_uuid}"})
