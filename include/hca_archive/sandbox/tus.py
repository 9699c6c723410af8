"""DSP's tus 1.0.0 file endpoint (``<dsp>/files/``): creation, HEAD for the offset, PATCH chunks.

Creation needs upload metadata ``jwtToken`` (a valid AAP token), ``submissionID`` (a Draft
submission) and ``name``. Bytes that arrived before a connection broke are kept, as tus promises.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
from collections import defaultdict

from hca_archive.sandbox.context import Context
from hca_archive.sandbox.store import now_iso
from hca_archive.sandbox.web import HttpError, Request, Response, Router

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
LOCK_WAIT_SECONDS = 10.0
MAX_NAME = 255


def _tus_error(status: int, message: str) -> HttpError:
    return HttpError(status, {"message": message}, TUS_HEADERS)


def parse_metadata(header: str) -> dict[str, str]:
    """Decode ``Upload-Metadata``: comma-separated ``key base64(value)`` pairs."""
    metadata = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _tus_error(400, f"Upload-Metadata value of {key!r} is not base64") from None
    return metadata


def safe_file_name(name: str) -> bool:
    return (
        0 < len(name) <= MAX_NAME
        and name not in (".", "..")
        and not any(char in name for char in "/\\\0")
    )


class TusEndpoint:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def register(self, router: Router) -> None:
        router.add("OPTIONS", r"/files/?", self.options)
        router.add("POST", r"/files/?", self.create)
        router.add("HEAD", r"/files/(?P<upload_id>[0-9a-f]{32})", self.head)
        router.add("PATCH", r"/files/(?P<upload_id>[0-9a-f]{32})", self.patch)

    def options(self, request: Request) -> Response:
        return Response(
            204,
            headers={**TUS_HEADERS, "Tus-Version": TUS_VERSION, "Tus-Extension": "creation"},
        )

    def create(self, request: Request) -> Response:
        _require_tus(request)
        length = _int_header(request, "Upload-Length")
        metadata = parse_metadata(request.headers.get("Upload-Metadata", ""))
        token = metadata.get("jwtToken")
        if not token:
            raise _tus_error(401, "Upload-Metadata has no jwtToken")
        if problem := self._ctx.tokens.problem(token):
            raise _tus_error(401, f"jwtToken rejected: {problem}")
        name, submission_id = metadata.get("name", ""), metadata.get("submissionID", "")
        if not safe_file_name(name):
            raise _tus_error(400, f"Upload-Metadata name {name!r} is not a plain file name")
        submission = self._ctx.store.one(
            "SELECT status FROM dsp_submissions WHERE id = ?", (submission_id,)
        )
        if submission is None:
            raise _tus_error(
                400, f"Upload-Metadata submissionID {submission_id!r}: no such submission"
            )
        if submission["status"] != "Draft":
            raise _tus_error(
                400, f"submission {submission_id} is {submission['status']}: files need a Draft"
            )
        upload_id = uuid.uuid4().hex
        self._ctx.uploads_dir.mkdir(parents=True, exist_ok=True)
        (self._ctx.uploads_dir / upload_id).touch()
        with self._ctx.store.tx() as db:
            db.execute(
                "INSERT INTO uploads (id, dsp_uuid, name, length, offset, created) "
                "VALUES (?, ?, ?, ?, 0, ?)",
                (upload_id, submission_id, name, length, now_iso()),
            )
        if length == 0:
            self._completed(upload_id)
        location = f"{request.base_url}/files/{upload_id}"
        return Response(201, headers={**TUS_HEADERS, "Location": location})

    def head(self, request: Request, upload_id: str) -> Response:
        _require_tus(request)
        upload = self._upload(upload_id)
        headers = {
            **TUS_HEADERS,
            "Upload-Offset": str(upload["offset"]),
            "Upload-Length": str(upload["length"]),
            "Cache-Control": "no-store",
        }
        return Response(200, headers=headers)

    def patch(self, request: Request, upload_id: str) -> Response:
        _require_tus(request)
        if request.headers.get("Content-Type") != "application/offset+octet-stream":
            raise _tus_error(415, "Content-Type must be application/offset+octet-stream")
        offset = _int_header(request, "Upload-Offset")
        lock = self._locks[upload_id]
        if not lock.acquire(timeout=LOCK_WAIT_SECONDS):
            raise _tus_error(423, f"upload {upload_id} is being written by another request")
        try:
            upload = self._upload(upload_id)
            if offset != upload["offset"]:
                raise _tus_error(409, f"Upload-Offset {offset} does not match {upload['offset']}")
            if upload["completed"] is not None:  # as tusd: the offset, and no second finish
                return Response(204, headers={**TUS_HEADERS, "Upload-Offset": str(offset)})
            if offset + request.remaining > upload["length"]:
                raise _tus_error(413, "the chunk goes past the declared Upload-Length")
            with (self._ctx.uploads_dir / upload_id).open("r+b") as data:
                data.truncate(offset)
                data.seek(offset)
                for chunk in request.read_chunks():
                    data.write(chunk)
                new_offset = data.tell()
            with self._ctx.store.tx() as db:
                db.execute("UPDATE uploads SET offset = ? WHERE id = ?", (new_offset, upload_id))
            if new_offset == upload["length"]:
                self._completed(upload_id)
        finally:
            lock.release()
        return Response(204, headers={**TUS_HEADERS, "Upload-Offset": str(new_offset)})

    def _upload(self, upload_id: str):
        upload = self._ctx.store.one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        if upload is None:
            raise _tus_error(404, f"no upload {upload_id}")
        return upload

    def _completed(self, upload_id: str) -> None:
        with self._ctx.store.tx() as db:
            db.execute(
                "UPDATE uploads SET completed = ?, check_state = 'pending' WHERE id = ?",
                (now_iso(), upload_id),
            )
        self._ctx.scheduler.schedule("check_upload", {"upload_id": upload_id})


def _require_tus(request: Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise HttpError(
            412, {"message": f"Tus-Resumable must be {TUS_VERSION}"}, {"Tus-Version": TUS_VERSION}
        )


def _int_header(request: Request, name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit():
        raise _tus_error(400, f"{name} header must be a non-negative integer, got {raw!r}")
    return int(raw)
