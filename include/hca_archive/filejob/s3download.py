"""Download S3 objects with concurrent ranged GETs, resume after interruption, verify the content.

What is verified, in order of preference:

1. a single-part object's ETag, which is the MD5 of its content;
2. a multipart object's ETag ``md5(md5(part 1) + ... + md5(part N))-N``, using the part sizes S3
   reports (``HeadObject`` with ``PartNumber``);
3. a full-object S3 checksum (SHA-256, SHA-1, CRC64NVME, CRC32C or CRC32, read with
   ``ChecksumMode=ENABLED``);
4. otherwise only the size (SSE-KMS, DSSE-KMS or SSE-C objects, whose ETag is not an MD5, and
   multipart objects whose part sizes S3 does not report consistently, all without a full-object
   checksum);
   the log and the result's ``inputs[].verified`` say so.

The object is written to ``<name>.part`` next to the destination and renamed once it verifies.
A sidecar ``<name>.part.json`` records the byte ranges already written together with the object's
ETag, so a restarted job fetches only the missing ranges; when the ETag changed it starts over.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from awscrt import checksums
from botocore.exceptions import BotoCoreError, ClientError

from hca_archive.filejob.progress import Progress, megabytes
from hca_archive.filejob.workdir import read_json, write_json_atomically
from hca_archive.plan import PARTIAL_SUFFIX, RESUME_SUFFIX

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MiB
READ_CHUNK = MiB
# Whole downloads made before a copy that does not verify fails the job: a second one from
# scratch outlives a corruption on the way or in resumed bytes; one S3 itself holds, it does not.
VERIFY_ATTEMPTS = 2


class DownloadError(Exception):
    """The object could not be fetched, or what was fetched does not match S3's description."""


class ObjectChangedError(DownloadError):
    """The object's ETag changed during the download (``If-Match`` failed)."""


# What S3's refusals mean for the wrangler. S3 answers 403 for a missing object too when the
# credentials may not list the bucket.
REFUSALS = {
    404: "no such file in S3 (check the plan's cloud URL and that the file is still there)",
    403: "S3 refused access: the file job's AWS credentials cannot read it, or it does not exist",
}


class RefusedError(DownloadError):
    """S3 refused the request (403) or has no such object or bucket (404): no retry helps."""


class _Abandoned(Exception):
    """A range given up because the download stopped (a failed range, an interruption)."""


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc:
    """A CRC as S3 reports it: `width` bytes, big-endian; `function(data, previous)` extends it."""

    def __init__(self, function: Callable[[bytes, int], int], width: int) -> None:
        self._function, self._width = function, width
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = self._function(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self._width, "big")


# The full-object checksums S3 may hold, strongest first. CRC64NVME is S3's default for objects
# uploaded without one: with it, an SSE-KMS object (whose ETag is no MD5) is still verified.
CHECKSUMS: dict[str, Callable[[], _Hasher]] = {
    "ChecksumSHA256": hashlib.sha256,
    "ChecksumSHA1": hashlib.sha1,
    "ChecksumCRC64NVME": partial(_Crc, checksums.crc64nvme, 8),
    "ChecksumCRC32C": partial(_Crc, checksums.crc32c, 4),
    "ChecksumCRC32": partial(_Crc, zlib.crc32, 4),
}


@dataclass(frozen=True)
class Expectation:
    """What a correct copy of the object looks like."""

    size: int
    etag: str  # as S3 sends it, quotes included; used for If-Match and the resume sidecar
    part_sizes: tuple[int, ...] | None  # set when the ETag is an MD5 (single or multipart) to check
    checksum: tuple[str, str] | None  # (HeadObject field, base64 value) of a full-object checksum

    @property
    def md5(self) -> str | None:
        """The content's MD5 when S3 says it before any download: a single-part MD5 ETag."""
        if self.part_sizes == (self.size,) and "-" not in self.etag:
            value = self.etag.strip('"').lower()
            return (
                value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None
            )
        return None

    @property
    def description(self) -> str:
        if self.part_sizes is not None:
            if "-" in self.etag:
                return f"multipart ETag over {len(self.part_sizes)} parts"
            return "ETag = MD5 of the content"
        if self.checksum is not None:
            return f"S3 {self.checksum[0].removeprefix('Checksum')} checksum"
        return "size only: the ETag cannot be recomputed and S3 has no full-object checksum"


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    bytes: int
    md5: str
    verified: str
    reused: bool
    resumed_from: int
    seconds: float


def parse_etag_parts(etag: str) -> int | None:
    """N for a multipart ETag ``"<hex>-N"``, None for a single-part one."""
    value = etag.strip('"')
    if "-" not in value:
        return None
    count = value.rsplit("-", 1)[1]
    return int(count) if count.isdigit() else None


class S3Downloader:
    def __init__(
        self,
        client: Any,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        workers: int = 4,
        attempts: int = 5,
        backoff: float = 0.5,
        progress_interval: float = 10.0,
    ) -> None:
        if part_size < 1 or workers < 1 or attempts < 1:
            raise ValueError("part_size, workers and attempts must be positive")
        self._client = client
        self._part_size = part_size
        self._workers = workers
        self._attempts = attempts
        self._backoff = backoff
        self._progress_interval = progress_interval

    def fetch(self, bucket: str, key: str, destination: Path) -> FetchedFile:
        """Make ``destination`` a verified copy of ``s3://bucket/key``; reuse it if it verifies."""
        started = time.monotonic()
        url = f"s3://{bucket}/{key}"
        expected = self.describe(bucket, key)
        if destination.exists():
            try:
                md5 = self._verify(bucket, key, destination, expected)
            except DownloadError as mismatch:
                log.warning(
                    "cached %s does not verify (%s); fetching it again", destination, mismatch
                )
                destination.unlink()
            else:
                log.info(
                    "reusing %s for %s: %s; verified: %s",
                    destination.name,
                    url,
                    megabytes(expected.size),
                    expected.description,
                )
                return FetchedFile(
                    destination,
                    expected.size,
                    md5,
                    expected.description,
                    reused=True,
                    resumed_from=0,
                    seconds=time.monotonic() - started,
                )
        partial = destination.with_name(destination.name + PARTIAL_SUFFIX)
        sidecar = destination.with_name(destination.name + RESUME_SUFFIX)
        for attempt in range(1, VERIFY_ATTEMPTS + 1):
            try:
                resumed_from = self._download(bucket, key, expected, partial, sidecar)
            except OSError as error:  # os.pwrite's ENOSPC or EIO names no file
                raise DownloadError(
                    f"{url}: cannot write {partial} ({megabytes(expected.size)}): "
                    f"{error.strerror or error}"
                ) from None
            try:
                md5 = self._verify(bucket, key, partial, expected)
                break
            except DownloadError as mismatch:
                partial.unlink(missing_ok=True)
                sidecar.unlink(missing_ok=True)
                if attempt == VERIFY_ATTEMPTS:
                    raise DownloadError(
                        f"{url}: downloaded copy does not verify "
                        f"({VERIFY_ATTEMPTS} downloads): {mismatch}"
                    ) from None
                log.warning(
                    "%s: downloaded copy does not verify (%s); fetching it again", url, mismatch
                )
        os.replace(partial, destination)
        sidecar.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        log.info(
            "downloaded %s %s md5 %s in %.1f s; verified: %s%s",
            url,
            megabytes(expected.size),
            md5,
            seconds,
            expected.description,
            f"; resumed at byte {resumed_from}" if resumed_from else "",
        )
        return FetchedFile(
            destination, expected.size, md5, expected.description, False, resumed_from, seconds
        )

    def describe(self, bucket: str, key: str) -> Expectation:
        head = self._call("head_object", bucket, key, ChecksumMode="ENABLED")
        size = int(head["ContentLength"])
        etag = head["ETag"]
        checksum = next(
            ((field, head[field]) for field in CHECKSUMS if head.get(field)),
            None,
        )
        if checksum is not None and (head.get("ChecksumType") == "COMPOSITE" or "-" in checksum[1]):
            checksum = None  # a checksum of part checksums: not computable without the part sizes
        if str(head.get("ServerSideEncryption", "")).startswith("aws:kms") or head.get(
            "SSECustomerAlgorithm"
        ):  # SSE-KMS, DSSE-KMS ("aws:kms:dsse") or SSE-C: the ETag is not an MD5 then
            return Expectation(size, etag, None, checksum)
        parts = parse_etag_parts(etag)
        if parts is None:
            return Expectation(size, etag, (size,), checksum)
        return Expectation(size, etag, self._part_sizes(bucket, key, size, parts), checksum)

    def _part_sizes(self, bucket: str, key: str, size: int, parts: int) -> tuple[int, ...] | None:
        first = self._call("head_object", bucket, key, PartNumber=1)
        first_size = int(first["ContentLength"])
        if int(first.get("PartsCount") or parts) != parts or first_size <= 0:
            return None
        if math.ceil(size / first_size) == parts:  # most likely equal parts; _verify checks
            return (first_size,) * (parts - 1) + (size - first_size * (parts - 1),)
        return self._listed_part_sizes(bucket, key, size, parts)

    def _listed_part_sizes(
        self, bucket: str, key: str, size: int, parts: int
    ) -> tuple[int, ...] | None:
        sizes = [
            int(self._call("head_object", bucket, key, PartNumber=number)["ContentLength"])
            for number in range(1, parts + 1)
        ]
        return tuple(sizes) if sum(sizes) == size else None

    def _verify(self, bucket: str, key: str, path: Path, expected: Expectation) -> str:
        """``verify_file``; a multipart ETag that fails with equal part sizes inferred from the
        first part is checked again with the size of every part: parts may differ in size
        (6, 5 and 5 MiB look like 6, 6 and 4)."""
        try:
            return verify_file(path, expected)
        except DownloadError:
            parts = parse_etag_parts(expected.etag)
            if expected.part_sizes is None or parts is None or path.stat().st_size != expected.size:
                raise
            listed = self._listed_part_sizes(bucket, key, expected.size, parts)
            if listed is None or listed == expected.part_sizes:
                raise
            log.info("s3://%s/%s has parts of unequal sizes: %s", bucket, key, listed)
            return verify_file(path, replace(expected, part_sizes=listed))

    def _call(self, operation: str, bucket: str, key: str, **extra: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(Bucket=bucket, Key=key, **extra)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = error.response.get("Error", {}).get("Code", "")
            if status == 412 or code == "PreconditionFailed":
                raise ObjectChangedError(
                    f"s3://{bucket}/{key} changed while it was being downloaded; run the job again"
                ) from None
            refused = status in (403, 404)
            detail = f"{code} (HTTP {status})" if code and code != str(status) else f"HTTP {status}"
            raise (RefusedError if refused else DownloadError)(
                f"s3://{bucket}/{key}: {REFUSALS.get(status, 'S3 failed')}: {operation} {detail}"
            ) from None

    def _download(
        self, bucket: str, key: str, expected: Expectation, partial: Path, sidecar: Path
    ) -> int:
        """Fill ``partial`` with the object's bytes; returns how many were already there."""
        state = read_json(sidecar)
        layout = {"etag": expected.etag, "size": expected.size, "part_size": self._part_size}
        done: set[tuple[int, int]] = set()
        if (
            isinstance(state, dict)
            and {name: state.get(name) for name in layout} == layout
            and partial.exists()
            and partial.stat().st_size == expected.size
        ):
            done = {(int(start), int(end)) for start, end in state.get("done", [])}
        else:
            if state is not None:
                log.info(
                    "the partial download of s3://%s/%s was of another version of the object "
                    "(or with another part size); fetching all of it",
                    bucket,
                    key,
                )
            with open(partial, "wb") as handle:
                handle.truncate(expected.size)
        already = sum(end - start for start, end in done)
        ranges = [
            (start, min(start + self._part_size, expected.size))
            for start in range(0, expected.size, self._part_size)
        ]
        missing = [span for span in ranges if span not in done]
        if already:
            log.info(
                "resuming download of s3://%s/%s at %s of %s (%d of %d parts present)",
                bucket,
                key,
                megabytes(already),
                megabytes(expected.size),
                len(ranges) - len(missing),
                len(ranges),
            )
        progress = Progress(
            f"download {key.rsplit('/', 1)[-1]}",
            expected.size,
            start=already,
            interval=self._progress_interval,
        )
        record_lock = threading.Lock()
        stop = threading.Event()

        def fetch_and_record(span: tuple[int, int]) -> None:
            self._fetch_range(bucket, key, expected.etag, descriptor, span, progress, stop)
            os.fsync(descriptor)  # the sidecar must not outlive a crash that loses these bytes
            with record_lock:
                done.add(span)
                write_json_atomically(sidecar, {**layout, "done": sorted(done)})

        descriptor = os.open(partial, os.O_WRONLY)
        try:
            with ThreadPoolExecutor(self._workers, thread_name_prefix="s3-range") as pool:
                futures = [pool.submit(fetch_and_record, span) for span in missing]
                try:
                    finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                finally:  # on a failed range or an interruption, start no further range
                    stop.set()  # and leave the ones in flight at their next chunk
                    for future in futures:
                        future.cancel()
                for future in finished:
                    future.result()
        finally:
            os.close(descriptor)
            progress.close()
        return already

    def _fetch_range(
        self,
        bucket: str,
        key: str,
        etag: str,
        descriptor: int,
        span: tuple[int, int],
        progress: Progress,
        stop: threading.Event,
    ) -> None:
        start, end = span
        for attempt in range(1, self._attempts + 1):
            offset = start
            try:
                response = self._call(
                    "get_object", bucket, key, Range=f"bytes={start}-{end - 1}", IfMatch=etag
                )
                for chunk in response["Body"].iter_chunks(READ_CHUNK):
                    if stop.is_set():
                        response["Body"].close()
                        raise _Abandoned
                    if offset + len(chunk) > end:  # it would overwrite the next range
                        response["Body"].close()
                        raise DownloadError(
                            f"range {start}-{end - 1}: the server sent more bytes than asked "
                            "(it ignored the Range header?)"
                        )
                    _write_at(descriptor, chunk, offset)
                    offset += len(chunk)
                    progress.advance(len(chunk))
                if offset != end:
                    raise DownloadError(f"range {start}-{end - 1} ended early at byte {offset}")
                return
            except (ObjectChangedError, RefusedError):
                raise
            except (BotoCoreError, DownloadError) as error:
                progress.advance(start - offset)
                if attempt == self._attempts:
                    raise DownloadError(
                        f"s3://{bucket}/{key} bytes {start}-{end - 1}: gave up after "
                        f"{attempt} attempts: {error}"
                    ) from None
                log.info("s3://%s/%s bytes %d-%d: %s; retrying", bucket, key, start, end - 1, error)
                if stop.wait(self._backoff * 2 ** (attempt - 1)):
                    raise _Abandoned from None


def _write_at(descriptor: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        view = view[written:]
        offset += written


def verify_file(path: Path, expected: Expectation) -> str:
    """Check ``path`` against ``expected`` in one streaming pass; returns the file's MD5 (hex)."""
    actual_size = path.stat().st_size
    if actual_size != expected.size:
        raise DownloadError(f"{path.name} has {actual_size} bytes, S3 has {expected.size}")
    whole = hashlib.md5(usedforsecurity=False)
    checksum = CHECKSUMS[expected.checksum[0]]() if expected.checksum else None
    part_digests: list[bytes] = []
    with open(path, "rb") as handle:
        for part_size in expected.part_sizes or (expected.size,):
            part = hashlib.md5(usedforsecurity=False)
            remaining = part_size
            while remaining:
                chunk = handle.read(min(READ_CHUNK, remaining))
                if not chunk:
                    raise DownloadError(f"{path.name} ended early")
                remaining -= len(chunk)
                part.update(chunk)
                whole.update(chunk)
                if checksum is not None:
                    checksum.update(chunk)
            part_digests.append(part.digest())
    s3_etag = expected.etag.strip('"')
    if expected.part_sizes is not None:
        if "-" in s3_etag:
            combined = hashlib.md5(b"".join(part_digests), usedforsecurity=False).hexdigest()
            actual_etag = f"{combined}-{len(part_digests)}"
        else:
            actual_etag = whole.hexdigest()
        if actual_etag != s3_etag:
            raise DownloadError(
                f"{path.name}: ETag of the content is {actual_etag}, S3 has {s3_etag}"
            )
    if expected.checksum is not None and checksum is not None:
        field, value = expected.checksum
        actual = base64.b64encode(checksum.digest()).decode()
        if actual != value:
            raise DownloadError(f"{path.name}: {field} of the content is {actual}, S3 has {value}")
    return whole.hexdigest()
