"""A minimal in-test tus 1.0.0 server (creation, HEAD, PATCH) on loopback, with a drop fault."""

from __future__ import annotations

import base64
import itertools
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CountingTokens:
    """Hands out a new token for every request, as a refreshing AAP source might."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.invalidated = 0

    def token(self) -> str:
        return f"jwt-{next(self._numbers)}"

    def invalidate(self) -> None:
        self.invalidated += 1


@dataclass
class StubUpload:
    length: int
    metadata: dict[str, str]
    data: bytearray = field(default_factory=bytearray)


@dataclass
class TusStub:
    url: str
    uploads: dict[str, StubUpload] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # PATCHes to break: keep this many bytes of the body, then drop the connection unanswered;
    # None serves that PATCH.
    drop_after_bytes: list[int | None] = field(default_factory=list)
    # Status codes to answer instead of serving the next POSTs / PATCHes.
    post_statuses: list[int] = field(default_factory=list)
    patch_statuses: list[int] = field(default_factory=list)
    location_prefix: str = ""  # put before /files/<id> in Location, e.g. another host
    redirect_to: str = ""  # when set, every request is answered 307 to this URL
    extra_head_offset: int = 0  # added to the offset HEAD reports: a server out of step
    stuck_patches: int = 0  # PATCHes answered 204 with the offset unchanged, their bytes dropped
    unknown_status: int = 404  # for an unknown upload; tus 1.0.0 allows 404, 410 or 403
    patched_bytes: int = 0

    @property
    def endpoint(self) -> str:
        return f"{self.url}/files/"

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.requests]


def _handler(stub: TusStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Tus-Resumable", "1.0.0")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _record(self) -> None:
            stub.requests.append((self.command, self.path, dict(self.headers.items())))

        def do_POST(self) -> None:
            self._record()
            if stub.redirect_to:
                self._answer(307, {"Location": stub.redirect_to})
                return
            if stub.post_statuses:
                self._answer(stub.post_statuses.pop(0))
                return
            metadata = {}
            for pair in self.headers.get("Upload-Metadata", "").split(","):
                key, _, value = pair.partition(" ")
                metadata[key] = base64.b64decode(value).decode()
            upload_id = uuid.uuid4().hex
            stub.uploads[upload_id] = StubUpload(int(self.headers["Upload-Length"]), metadata)
            self._answer(201, {"Location": f"{stub.location_prefix}/files/{upload_id}"})

        def do_HEAD(self) -> None:
            self._record()
            upload = stub.uploads.get(self.path.rsplit("/", 1)[-1])
            if upload is None:
                self._answer(stub.unknown_status)
                return
            offset = len(upload.data) + stub.extra_head_offset
            self._answer(200, {"Upload-Offset": str(offset), "Upload-Length": str(upload.length)})

        def do_PATCH(self) -> None:
            self._record()
            upload = stub.uploads.get(self.path.rsplit("/", 1)[-1])
            length = int(self.headers["Content-Length"])
            if upload is None:
                self.rfile.read(length)
                self._answer(stub.unknown_status)
                return
            if stub.patch_statuses:
                self.rfile.read(length)
                self._answer(stub.patch_statuses.pop(0))
                return
            if int(self.headers["Upload-Offset"]) != len(upload.data):
                self.rfile.read(length)
                self._answer(409)
                return
            if stub.stuck_patches:
                stub.stuck_patches -= 1
                self.rfile.read(length)
                self._answer(204, {"Upload-Offset": str(len(upload.data))})
                return
            keep = stub.drop_after_bytes.pop(0) if stub.drop_after_bytes else None
            if keep is not None:
                upload.data += self.rfile.read(keep)
                stub.patched_bytes += keep
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = self.rfile.read(length)
            upload.data += body
            stub.patched_bytes += len(body)
            self._answer(204, {"Upload-Offset": str(len(upload.data))})

    return Handler


@contextmanager
def running_tus_stub() -> Iterator[TusStub]:
    stub = TusStub(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    host, port = server.server_address[:2]
    stub.url = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
