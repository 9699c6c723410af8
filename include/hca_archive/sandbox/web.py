"""A small HTTP layer over the standard library's threading server, with fault injection.

The stand-ins use it rather than a WSGI framework because faults must act on the raw connection:
a dropped request closes the socket without a byte of response, a hung one never answers.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from hca_archive.sandbox.faults import FaultBoard

log = logging.getLogger(__name__)

HANG_LIMIT_SECONDS = 3600.0
SHUTDOWN_POLL_SECONDS = 0.05
WHITELABEL_PAGE = (
    "<html><body><h1>Whitelabel Error Page</h1>"
    "<p>This application has no explicit mapping for /error, "
    "so you are seeing this as a fallback.</p>"
    "<div id='created'>{when}</div>"
    "<div>There was an unexpected error (type=Internal Server Error, status=500).</div>"
    "</body></html>"
)


class HttpError(Exception):
    """Raised by a route to answer with ``status`` and a JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def text_response(status: int, text: str, content_type: str = "text/plain") -> Response:
    return Response(status, text.encode(), {"Content-Type": f"{content_type}; charset=utf-8"})


class Request:
    """One incoming request; the body is read on demand so large uploads can be streamed."""

    def __init__(self, handler: BaseHTTPRequestHandler, base_url: str) -> None:
        split = urlsplit(handler.path)
        self.method = handler.command
        self.path = split.path
        self.query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        self.headers: Message = handler.headers
        self.base_url = base_url
        self._rfile = handler.rfile
        self.remaining = int(self.headers.get("Content-Length") or 0)

    def read_chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the body in pieces; stops early, without error, when the client goes away."""
        while self.remaining > 0:
            chunk = self._rfile.read(min(size, self.remaining))
            if not chunk:
                return
            self.remaining -= len(chunk)
            yield chunk

    def is_json(self) -> bool:
        """Whether the body is declared JSON (application/json or application/*+json), the only
        bodies Flask's get_json() and Spring MVC's JSON converter read."""
        mimetype = self.headers.get_content_type()
        return mimetype == "application/json" or (
            mimetype.startswith("application/") and mimetype.endswith("+json")
        )

    def body(self) -> bytes:
        return b"".join(self.read_chunks())

    def json(self) -> Any:
        raw = self.body()
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise HttpError(400, {"message": "request body is not valid JSON"}) from None


def query_int(request: Request, name: str, default: int) -> int:
    """A non-negative integer query parameter, or ``default`` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise HttpError(400, {"message": f"query parameter {name} must be a non-negative integer"})
    return int(raw)


def spring_page(
    request: Request, name: str, items: list[Any], base: str, default_size: int = 20
) -> dict[str, Any]:
    """The page of ``items`` that ``request`` asks for (``page``, ``size``), as Spring Data REST
    serves a collection or search at ``base``: ``_embedded``, ``page`` and the links between
    pages, which keep the request's other query parameters."""
    page = query_int(request, "page", 0)
    size = max(1, query_int(request, "size", default_size))
    total_pages = -(-len(items) // size)

    def link(number: int) -> dict[str, str]:
        return {"href": f"{base}?{urlencode({**request.query, 'page': number, 'size': size})}"}

    links = {"self": link(page)}
    if total_pages:
        links["first"] = link(0)
        links["last"] = link(total_pages - 1)
    if page + 1 < total_pages:
        links["next"] = link(page + 1)
    if page > 0:
        links["prev"] = link(page - 1)
    return {
        "_embedded": {name: items[page * size : (page + 1) * size]},
        "_links": links,
        "page": {
            "size": size,
            "totalElements": len(items),
            "totalPages": total_pages,
            "number": page,
        },
    }


Route = Callable[..., Response]


class Router:
    """Routes ``(method, path regex)`` to functions called with the request and the named groups."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []

    def add(self, method: str, pattern: str, route: Route) -> None:
        self._routes.append((method, re.compile(pattern + r"\Z"), route))

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, pattern, route in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed = True
                continue
            return route(request, **match.groupdict())
        if allowed:
            return json_response(405, {"message": f"method {request.method} not allowed"})
        return json_response(404, {"message": f"no such resource: {request.path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 refuses connections under load


class ServiceServer:
    """One stand-in service on its own loopback port, in a background thread."""

    def __init__(
        self,
        name: str,
        router: Router,
        port: int,
        faults: FaultBoard | None,
        stopping: threading.Event,
    ) -> None:
        self.name = name
        handler = _handler_class(name, router, faults, stopping)
        self.server = _Server(("127.0.0.1", port), handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        handler.base_url = self.url
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name=f"sandbox-{name}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_class(
    name: str, router: Router, faults: FaultBoard | None, stopping: threading.Event
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"hca-sandbox-{name}"
        base_url = ""

        def _handle(self) -> None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                self._send(json_response(411, {"message": "chunked bodies are not supported"}))
                return
            self.drop_answer = False
            if faults is not None and self._injected_fault():
                return
            request = Request(self, self.base_url)
            try:
                response = router.dispatch(request)
            except HttpError as error:
                response = json_response(error.status, error.body, error.headers)
            except Exception as error:
                log.exception("%s: %s %s failed", name, self.command, self.path)
                response = json_response(500, {"message": f"internal error: {error}"})
            if request.remaining or self.drop_answer:
                self.close_connection = True  # an unread body would corrupt the next request
            if not self.drop_answer:
                self._send(response)

        def _injected_fault(self) -> bool:
            assert faults is not None
            fault, latency = faults.decide(name)
            if fault == "hang":
                log.info("%s: hanging %s %s", name, self.command, urlsplit(self.path).path)
                stopping.wait(HANG_LIMIT_SECONDS)
                self.close_connection = True
                return True
            if latency:
                time.sleep(latency)
            if fault == "drop":
                self.close_connection = True
                return True
            self.drop_answer = fault == "drop_after"
            if fault == "error":
                self.close_connection = True
                status = HTTPStatus.SERVICE_UNAVAILABLE
                self._send(json_response(status, {"status": status, "message": "injected fault"}))
                return True
            if fault == "html500":
                self.close_connection = True
                page = WHITELABEL_PAGE.format(when=time.strftime("%a %b %d %H:%M:%S UTC %Y"))
                self._send(text_response(500, page, "text/html"))
                return True
            return False

        def _send(self, response: Response) -> None:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s: %s", name, format % args)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    return Handler
