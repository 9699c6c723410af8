"""A small tus 1.0.0 client (core protocol + creation) on ``requests``, for DSP's ``/files/``.

Chunks are streamed from disk (memory stays at a few kilobytes whatever the chunk size). The
upload URL is kept in a state file so a restarted job continues the same upload: it asks the
server for its offset (HEAD) and sends only the rest. Every request carries a fresh AAP token;
the ``jwtToken`` upload metadata exists only in the creation request, as DSP expects.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from hca_archive.clients import TokenSource
from hca_archive.filejob.progress import Progress, megabytes
from hca_archive.filejob.workdir import read_json, write_json_atomically
from hca_archive.http import one_line, summarise_body

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
MiB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 32 * MiB
TRANSIENT_STATUSES = frozenset({408, 423, 429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})


class TusError(Exception):
    """The upload failed for good (after retries, or refused by the server)."""


class _Transient(Exception):
    """One request failed in a way that retrying may cure."""


class _Gone(Exception):
    """The server no longer knows the upload."""


@dataclass(frozen=True)
class TusUpload:
    url: str
    bytes: int
    resumed_from: int | None  # the server's offset when an earlier upload was continued
    seconds: float


def encode_metadata(metadata: dict[str, str]) -> str:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (tus 1.0.0)."""
    for key in metadata:
        if not key or any(char in key for char in " ,") or not key.isascii():
            raise ValueError(f"invalid tus metadata key {key!r}")
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}"
        for key, value in metadata.items()
    )


class _FileSlice:
    """``length`` bytes of a file from ``offset``, read on demand while requests sends them."""

    def __init__(self, descriptor: int, offset: int, length: int, progress: Progress) -> None:
        self._descriptor = descriptor
        self._position = offset
        self._left = length
        self._length = length
        self._progress = progress

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = os.pread(self._descriptor, size, self._position) if size else b""
        self._position += len(data)
        self._left -= len(data)
        self._progress.advance(len(data))
        return data


class TusClient:
    def __init__(
        self,
        endpoint: str,
        tokens: TokenSource,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        session: requests.Session | None = None,
        attempts: int = 5,
        backoff: float = 0.5,
        timeout: tuple[float, float] = (10, 300),
        progress_interval: float = 10.0,
    ) -> None:
        if chunk_size < 1 or attempts < 1:
            raise ValueError("chunk_size and attempts must be positive")
        self.endpoint = endpoint
        self._tokens = tokens
        self._chunk_size = chunk_size
        self._session = session or requests.Session()
        self._attempts = attempts
        self._backoff = backoff
        self._timeout = timeout
        self._progress_interval = progress_interval

    def upload(
        self, path: Path, *, name: str, submission_id: str, md5: str, state_file: Path
    ) -> TusUpload:
        """Upload ``path`` as ``name`` to the submission; continues the upload in ``state_file``.

        An upload is continued only for the same content (``md5``): a file rebuilt with other
        bytes must not be spliced onto the start of the old one.
        """
        started = time.monotonic()
        size = path.stat().st_size
        identity = {
            "endpoint": self.endpoint,
            "submission_id": submission_id,
            "name": name,
            "size": size,
            "md5": md5,
        }
        url, offset = self._resume(state_file, identity)
        resumed_from = offset if url else None
        if url is None:
            url = self._create(size, name, submission_id)
            write_json_atomically(state_file, {**identity, "url": url})
            offset = 0
        progress = Progress(f"upload {name}", size, start=offset, interval=self._progress_interval)
        failures = 0
        descriptor = os.open(path, os.O_RDONLY)
        try:
            while offset < size:
                try:
                    offset = self._patch(url, descriptor, offset, size, progress)
                    failures = 0
                except (_Transient, _Gone) as problem:
                    failures += 1
                    if failures >= self._attempts:
                        raise TusError(
                            f"upload of {name} failed {failures} times in a row at offset "
                            f"{offset}: {problem}"
                        ) from None
                    time.sleep(self._backoff * 2 ** (failures - 1))
                    if isinstance(problem, _Gone):
                        log.warning(
                            "upload %s of %s is gone (%s); starting again", url, name, problem
                        )
                        url = self._create(size, name, submission_id)
                        write_json_atomically(state_file, {**identity, "url": url})
                        offset = 0
                    else:
                        server_offset = self._offset(url)
                        if server_offset is None:
                            continue  # gone: the next PATCH reports it and we start again
                        offset = server_offset
                        log.info(
                            "upload of %s resumed at offset %d after: %s", name, offset, problem
                        )
                    progress.advance(offset - progress.done)
        finally:
            os.close(descriptor)
            progress.close()
        if offset != size:  # the server is out of step with this file: not a finished upload
            raise TusError(f"the server reports {offset} bytes of {name}, which has {size}")
        state_file.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        log.info("uploaded %s %s to %s in %.1f s", name, megabytes(size), url, seconds)
        return TusUpload(url, size, resumed_from, seconds)

    def _resume(self, state_file: Path, identity: dict[str, object]) -> tuple[str | None, int]:
        state = read_json(state_file)
        if not isinstance(state, dict) or not isinstance(state.get("url"), str):
            return None, 0
        if {key: state.get(key) for key in identity} != identity:
            log.info(
                "stored upload of %s was for other content; starting a new one", identity["name"]
            )
            return None, 0
        if _origin(state["url"]) != _origin(self.endpoint):  # only we should write the file
            log.warning(
                "stored upload of %s is on another host than %s; starting a new one",
                identity["name"],
                self.endpoint,
            )
            return None, 0
        offset = self._offset(state["url"])
        if offset is None or offset > int(identity["size"]):  # type: ignore[call-overload]
            log.info(
                "stored upload %s is no longer on the server; starting a new one", state["url"]
            )
            return None, 0
        log.info(
            "upload of %s resumed at offset %d of %d (%s)",
            identity["name"],
            offset,
            identity["size"],
            state["url"],
        )
        return state["url"], offset

    def _headers(self, **extra: str) -> dict[str, str]:
        return {
            "Tus-Resumable": TUS_VERSION,
            "Authorization": f"Bearer {self._tokens.token()}",
            **extra,
        }

    def _create(self, size: int, name: str, submission_id: str) -> str:
        for attempt in range(1, self._attempts + 1):
            metadata = encode_metadata(
                {"jwtToken": self._tokens.token(), "submissionID": submission_id, "name": name}
            )
            try:
                response = self._send(
                    "POST",
                    self.endpoint,
                    headers=self._headers(
                        **{"Upload-Length": str(size), "Upload-Metadata": metadata}
                    ),
                )
                self._raise_for_status(response, "creating the upload")
                location = response.headers.get("Location")
                if response.status_code != 201 or not location:
                    raise TusError(
                        f"creating the upload of {name}: expected 201 with a Location, "
                        f"got {response.status_code}"
                    )
                url = urljoin(self.endpoint, location)
                if _origin(url) != _origin(self.endpoint):
                    raise TusError(
                        f"creating the upload of {name}: the server placed it on another host "
                        f"({_origin(url)}); not sending tokens there"
                    )
                log.info("created tus upload %s for %s (%d bytes)", url, name, size)
                return url
            except _Transient as problem:
                if attempt == self._attempts:
                    raise TusError(f"creating the upload of {name} failed: {problem}") from None
                time.sleep(self._backoff * 2 ** (attempt - 1))
            except _Gone as problem:
                raise TusError(f"tus endpoint {self.endpoint} not found: {problem}") from None
        raise AssertionError("unreachable")

    def _offset(self, url: str) -> int | None:
        """The server's offset of the upload at ``url``, None when it is gone."""
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._send("HEAD", url, headers=self._headers())
                if response.status_code == 403 and "Upload-Offset" not in response.headers:
                    return None  # tus 1.0.0: HEAD answers 404, 410 or 403 for an unknown upload
                self._raise_for_status(response, "asking for the upload offset")
                return _offset_header(response)
            except _Gone:
                return None
            except _Transient as problem:
                if attempt == self._attempts:
                    raise TusError(f"asking {url} for its offset failed: {problem}") from None
                time.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _patch(self, url: str, descriptor: int, offset: int, size: int, progress: Progress) -> int:
        length = min(self._chunk_size, size - offset)
        body = _FileSlice(descriptor, offset, length, progress)
        response = self._send(
            "PATCH",
            url,
            data=body,
            headers=self._headers(
                **{
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                }
            ),
        )
        if response.status_code == 409:
            raise _Transient("the server's offset differs from ours (409)")
        self._raise_for_status(response, f"sending bytes {offset}-{offset + length - 1}")
        new_offset = _offset_header(response)
        if not offset < new_offset <= size:
            raise _Transient(f"server answered offset {new_offset} after a chunk from {offset}")
        return new_offset

    def _raise_for_status(self, response: requests.Response, doing: str) -> None:
        if response.status_code < 400:
            return
        summary = f"{doing}: HTTP {response.status_code} {one_line(summarise_body(response), 200)}"
        if response.status_code in TRANSIENT_STATUSES:
            raise _Transient(summary)
        if response.status_code == 401:
            self._tokens.invalidate()  # perhaps expired early: the retry asks for a new token
            raise _Transient(summary)
        if response.status_code in GONE_STATUSES:
            raise _Gone(summary)
        raise TusError(summary)

    def _send(self, method: str, url: str, **options: object) -> requests.Response:
        """One request; redirects are not followed: on another host requests would drop the
        Authorization header but still send the token in ``Upload-Metadata`` (``jwtToken``)."""
        try:
            return self._session.request(
                method, url, timeout=self._timeout, allow_redirects=False, **options
            )
        except requests.exceptions.InvalidHeader:  # its text quotes the value: the token
            raise TusError(
                f"{method} {url}: InvalidHeader: a header value (the AAP token?) has leading "
                "whitespace, a line break or a reserved character; value not shown"
            ) from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as error:
            raise _Transient(f"{method} {url}: {type(error).__name__}") from None


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port, the default port spelt out: `https://dsp:443/` is `https://dsp/`.
    An address whose port is no number has no origin that matches another."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return scheme, url, None
    return scheme, parts.hostname or "", port


def _offset_header(response: requests.Response) -> int:
    value = response.headers.get("Upload-Offset", "")
    if not value.isdigit():
        raise _Transient(f"response without a valid Upload-Offset ({value!r})")
    return int(value)
