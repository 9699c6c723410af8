"""S3 downloads against a moto server: ranged parts, ETag checks, cache reuse, resume, retries."""

from __future__ import annotations

import base64
import errno
import hashlib
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import moto.s3.models
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from hca_archive.filejob import s3download
from hca_archive.filejob.s3download import (
    DownloadError,
    Expectation,
    S3Downloader,
    verify_file,
)

pytestmark = pytest.mark.integration

KiB = 1024


def content(size: int, seed: int = 0) -> bytes:
    return bytes((index * 7 + seed) % 251 for index in range(size))


class RecordingClient:
    """Passes calls to a real client; records GET ranges and can fail chosen ones."""

    def __init__(self, client: Any, fail_ranges: dict[str, Exception] | None = None) -> None:
        self._client = client
        self.ranges: list[str] = []
        self._fail = dict(fail_ranges or {})

    def head_object(self, **kwargs: Any) -> Any:
        return self._client.head_object(**kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        self.ranges.append(kwargs["Range"])
        failure = self._fail.pop(kwargs["Range"], None)
        if failure is not None:
            raise failure
        return self._client.get_object(**kwargs)


def put(moto_s3: Any, key: str, data: bytes) -> None:
    moto_s3.client().put_object(Bucket=moto_s3.bucket, Key=key, Body=data)


def put_multipart(moto_s3: Any, key: str, parts: list[bytes], monkeypatch) -> None:
    # Parts below S3's 5 MiB minimum keep the object small; the moto server runs in this process.
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)
    client = moto_s3.client()
    upload = client.create_multipart_upload(Bucket=moto_s3.bucket, Key=key)
    uploaded = []
    for number, body in enumerate(parts, start=1):
        answer = client.upload_part(
            Bucket=moto_s3.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
        )
        uploaded.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket=moto_s3.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": uploaded},
    )


def test_single_part_object_is_fetched_in_ranges_and_checked_against_its_md5(moto_s3, tmp_path):
    data = content(300 * KiB)
    put(moto_s3, "single/R1.fastq.gz", data)
    client = RecordingClient(moto_s3.client())
    fetched = S3Downloader(client, part_size=64 * KiB, workers=3).fetch(
        moto_s3.bucket, "single/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert (tmp_path / "R1.fastq.gz").read_bytes() == data
    assert fetched.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert fetched.verified == "ETag = MD5 of the content"
    assert len(client.ranges) == 5
    assert not fetched.reused
    assert sorted(path.name for path in tmp_path.iterdir()) == ["R1.fastq.gz"]


@pytest.mark.parametrize(
    "part_sizes",
    [
        (4 * KiB, 4 * KiB, 2 * KiB + 123),
        (4 * KiB, 6 * KiB, 3 * KiB),
        (6 * KiB, 5 * KiB, 5 * KiB),  # as many parts as 6 + 6 + 4: equal sizes are not proof
    ],
    ids=["equal-parts", "unequal-parts", "unequal-parts-with-the-count-of-equal-ones"],
)
def test_multipart_object_is_checked_against_its_multipart_etag(
    moto_s3, tmp_path, monkeypatch, part_sizes
):
    data = content(sum(part_sizes), seed=3)
    bounds = [sum(part_sizes[:n]) for n in range(len(part_sizes) + 1)]
    parts = [data[start:end] for start, end in itertools.pairwise(bounds)]
    key = f"multi/{'-'.join(str(size) for size in part_sizes)}.fastq.gz"
    put_multipart(moto_s3, key, parts, monkeypatch)
    fetched = S3Downloader(moto_s3.client(), part_size=3 * KiB).fetch(
        moto_s3.bucket, key, tmp_path / "R2.fastq.gz"
    )
    assert (tmp_path / "R2.fastq.gz").read_bytes() == data
    assert fetched.verified == "multipart ETag over 3 parts"


def test_multipart_etag_mismatch_is_reported(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * 10)
    part_md5s = b"".join(
        hashlib.md5(chunk, usedforsecurity=False).digest() for chunk in (b"a" * 4, b"a" * 6)
    )
    good = f'"{hashlib.md5(part_md5s, usedforsecurity=False).hexdigest()}-2"'
    assert (
        verify_file(path, Expectation(10, good, (4, 6), None))
        == hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    )
    with pytest.raises(DownloadError, match="ETag of the content"):
        verify_file(path, Expectation(10, good, (5, 5), None))


def test_full_object_checksum_is_used_when_the_etag_is_not_an_md5(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"some bytes")
    sha256 = base64.b64encode(hashlib.sha256(b"some bytes").digest()).decode()
    expected = Expectation(10, '"not-an-md5"', None, ("ChecksumSHA256", sha256))
    assert expected.description == "S3 SHA256 checksum"
    verify_file(path, expected)
    path.write_bytes(b"Some bytes")
    with pytest.raises(DownloadError, match="ChecksumSHA256"):
        verify_file(path, expected)


@pytest.mark.parametrize(
    ("field", "check_value"),
    [  # the catalogue's check values: each CRC of b"123456789"
        ("ChecksumCRC64NVME", 0xAE8B14860A799888.to_bytes(8, "big")),
        ("ChecksumCRC32C", 0xE3069283.to_bytes(4, "big")),
        ("ChecksumCRC32", 0xCBF43926.to_bytes(4, "big")),
    ],
    ids=["CRC64NVME", "CRC32C", "CRC32"],
)
def test_s3s_crc_checksums_are_computed_as_s3_does(tmp_path, field, check_value):
    path = tmp_path / "f"
    path.write_bytes(b"123456789")
    expected = Expectation(9, '"not-an-md5"', None, (field, base64.b64encode(check_value).decode()))
    verify_file(path, expected)
    path.write_bytes(b"123456780")
    with pytest.raises(DownloadError, match=field):
        verify_file(path, expected)


@pytest.mark.parametrize("algorithm", ["CRC64NVME", "CRC32C"])
def test_an_sse_kms_object_with_a_crc_checksum_is_verified_by_it(moto_s3, tmp_path, algorithm):
    """S3 gives every object uploaded without a checksum a CRC64NVME one: an SSE-KMS object's
    content is then checked, not only its size."""
    data = content(40 * KiB, seed=17)
    moto_s3.client().put_object(
        Bucket=moto_s3.bucket,
        Key=f"kms-{algorithm}/R1.fastq.gz",
        Body=data,
        ServerSideEncryption="aws:kms",
        ChecksumAlgorithm=algorithm,
    )
    fetched = S3Downloader(moto_s3.client(), part_size=16 * KiB).fetch(
        moto_s3.bucket, f"kms-{algorithm}/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert fetched.verified == f"S3 {algorithm} checksum"
    assert (tmp_path / "R1.fastq.gz").read_bytes() == data


def test_a_verified_cached_file_is_reused_without_fetching(moto_s3, tmp_path):
    data = content(50 * KiB, seed=5)
    put(moto_s3, "cached/I1.fastq.gz", data)
    (tmp_path / "I1.fastq.gz").write_bytes(data)
    client = RecordingClient(moto_s3.client())
    fetched = S3Downloader(client).fetch(
        moto_s3.bucket, "cached/I1.fastq.gz", tmp_path / "I1.fastq.gz"
    )
    assert fetched.reused
    assert client.ranges == []


def test_a_corrupted_cached_file_is_fetched_again(moto_s3, tmp_path):
    data = content(50 * KiB, seed=6)
    put(moto_s3, "corrupt/R1.fastq.gz", data)
    corrupted = bytearray(data)
    corrupted[1000] ^= 0xFF
    (tmp_path / "R1.fastq.gz").write_bytes(bytes(corrupted))
    client = RecordingClient(moto_s3.client())
    fetched = S3Downloader(client).fetch(
        moto_s3.bucket, "corrupt/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert not fetched.reused
    assert client.ranges
    assert (tmp_path / "R1.fastq.gz").read_bytes() == data


def test_an_interrupted_download_resumes_with_the_missing_parts_only(moto_s3, tmp_path):
    data = content(100 * KiB, seed=7)
    put(moto_s3, "resume/R2.fastq.gz", data)
    destination = tmp_path / "R2.fastq.gz"
    broken = RecordingClient(
        moto_s3.client(),
        fail_ranges={"bytes=61440-81919": EndpointConnectionError(endpoint_url="http://s3")},
    )
    first = S3Downloader(broken, part_size=20 * KiB, workers=1, attempts=1)
    with pytest.raises(DownloadError, match="gave up after 1 attempts"):
        first.fetch(moto_s3.bucket, "resume/R2.fastq.gz", destination)
    sidecar = json.loads((tmp_path / "R2.fastq.gz.part.json").read_text())
    assert [61440, 81920] not in sidecar["done"] and [0, 20480] in sidecar["done"]
    assert not destination.exists()

    client = RecordingClient(moto_s3.client())
    fetched = S3Downloader(client, part_size=20 * KiB, workers=1).fetch(
        moto_s3.bucket, "resume/R2.fastq.gz", destination
    )
    every_range = {
        f"bytes={start}-{start + 20 * KiB - 1}" for start in range(0, 100 * KiB, 20 * KiB)
    }
    already = {f"bytes={start}-{end - 1}" for start, end in sidecar["done"]}
    assert len(already) >= 3
    assert sorted(client.ranges) == sorted(every_range - already)
    assert fetched.resumed_from == len(sidecar["done"]) * 20 * KiB
    assert destination.read_bytes() == data
    assert not (tmp_path / "R2.fastq.gz.part").exists()
    assert not (tmp_path / "R2.fastq.gz.part.json").exists()


def interrupt_after_first_part(moto_s3, key: str, destination: Path) -> None:
    """Download a 40 KiB object in two 20 KiB parts, the second failing: a partial file and its
    resume record are left for the next fetch."""
    broken = RecordingClient(
        moto_s3.client(),
        fail_ranges={"bytes=20480-40959": EndpointConnectionError(endpoint_url="http://s3")},
    )
    with pytest.raises(DownloadError):
        S3Downloader(broken, part_size=20 * KiB, workers=1, attempts=1).fetch(
            moto_s3.bucket, key, destination
        )


def test_a_resume_record_without_its_partial_bytes_starts_over(moto_s3, tmp_path):
    """A sidecar naming parts of a partial file that lost its length (truncated, replaced) is
    not trusted: the parts it names would be read back as zeros."""
    data = content(40 * KiB, seed=8)
    put(moto_s3, "truncated/R1.fastq.gz", data)
    destination = tmp_path / "R1.fastq.gz"
    interrupt_after_first_part(moto_s3, "truncated/R1.fastq.gz", destination)
    os.truncate(tmp_path / "R1.fastq.gz.part", 0)
    client = RecordingClient(moto_s3.client())
    fetched = S3Downloader(client, part_size=20 * KiB, workers=1).fetch(
        moto_s3.bucket, "truncated/R1.fastq.gz", destination
    )
    assert fetched.resumed_from == 0
    assert sorted(client.ranges) == ["bytes=0-20479", "bytes=20480-40959"]
    assert destination.read_bytes() == data


def test_a_resumed_download_starts_over_when_the_object_changed(moto_s3, tmp_path):
    put(moto_s3, "changed/R1.fastq.gz", content(40 * KiB, seed=1))
    destination = tmp_path / "R1.fastq.gz"
    interrupt_after_first_part(moto_s3, "changed/R1.fastq.gz", destination)
    new_data = content(40 * KiB, seed=2)
    put(moto_s3, "changed/R1.fastq.gz", new_data)
    client = RecordingClient(moto_s3.client())
    fetched = S3Downloader(client, part_size=20 * KiB, workers=1).fetch(
        moto_s3.bucket, "changed/R1.fastq.gz", destination
    )
    assert fetched.resumed_from == 0
    assert len(client.ranges) == 2
    assert destination.read_bytes() == new_data


def test_transient_errors_are_retried(moto_s3, tmp_path):
    data = content(30 * KiB, seed=9)
    put(moto_s3, "flaky/R1.fastq.gz", data)
    client = RecordingClient(
        moto_s3.client(), fail_ranges={"bytes=0-16383": EndpointConnectionError(endpoint_url="x")}
    )
    fetched = S3Downloader(client, part_size=16 * KiB, backoff=0).fetch(
        moto_s3.bucket, "flaky/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert client.ranges.count("bytes=0-16383") == 2
    assert fetched.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()


class Tampering(RecordingClient):
    """Flips the first byte of the first `times` bodies it passes on."""

    def __init__(self, client: Any, times: int) -> None:
        super().__init__(client)
        self._times = times

    def get_object(self, **kwargs: Any) -> Any:
        answer = super().get_object(**kwargs)
        if self._times == 0:
            return answer
        self._times -= 1
        body = bytearray(answer["Body"].read())
        body[0] ^= 0xFF

        class Body:
            def iter_chunks(self, size: int):
                yield bytes(body)

        return {**answer, "Body": Body()}


def test_content_that_does_not_match_the_etag_is_rejected(moto_s3, tmp_path):
    put(moto_s3, "tampered/R1.fastq.gz", content(10 * KiB))
    client = Tampering(moto_s3.client(), times=2)

    with pytest.raises(DownloadError, match=r"does not verify \(2 downloads\)"):
        S3Downloader(client).fetch(moto_s3.bucket, "tampered/R1.fastq.gz", tmp_path / "R1.fastq.gz")
    assert client.ranges == ["bytes=0-10239"] * 2
    assert os.listdir(tmp_path) == []


def test_a_copy_corrupted_on_the_way_is_fetched_again_from_scratch(moto_s3, tmp_path):
    data = content(10 * KiB, seed=3)
    put(moto_s3, "corrupted-once/R1.fastq.gz", data)
    client = Tampering(moto_s3.client(), times=1)

    fetched = S3Downloader(client).fetch(
        moto_s3.bucket, "corrupted-once/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert client.ranges == ["bytes=0-10239"] * 2
    assert fetched.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert os.listdir(tmp_path) == ["R1.fastq.gz"]


def test_a_range_that_ends_early_is_fetched_again(moto_s3, tmp_path):
    """A body cut short without an error is not recorded as done: for an object checked for its
    size only, the missing bytes would stay zeros in the copy uploaded."""
    data = content(20 * KiB, seed=12)
    no_checksums = moto_s3.client(request_checksum_calculation="when_required")
    no_checksums.put_object(
        Bucket=moto_s3.bucket, Key="short/R1.fastq.gz", Body=data, ServerSideEncryption="aws:kms"
    )

    class CutShort(RecordingClient):
        cut = 1

        def get_object(self, **kwargs: Any) -> Any:
            answer = super().get_object(**kwargs)
            if not self.cut:
                return answer
            self.cut -= 1
            body = answer["Body"].read()[:-100]

            class Body:
                def iter_chunks(self, size: int):
                    yield body

            return {**answer, "Body": Body()}

    client = CutShort(moto_s3.client())
    fetched = S3Downloader(client, part_size=16 * KiB, workers=1, backoff=0).fetch(
        moto_s3.bucket, "short/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert fetched.verified.startswith("size only")
    assert client.ranges == ["bytes=0-16383", "bytes=0-16383", "bytes=16384-20479"]
    assert (tmp_path / "R1.fastq.gz").read_bytes() == data


def test_a_server_that_ignores_the_range_header_writes_nothing_past_the_range(moto_s3, tmp_path):
    put(moto_s3, "no-ranges/R1.fastq.gz", content(40 * KiB, seed=4))

    class IgnoresRange(RecordingClient):
        def get_object(self, **kwargs: Any) -> Any:
            self.ranges.append(kwargs.pop("Range"))
            return self._client.get_object(**kwargs)

    downloader = S3Downloader(IgnoresRange(moto_s3.client()), part_size=16 * KiB, backoff=0)
    with pytest.raises(DownloadError, match="more bytes than asked"):
        downloader.fetch(moto_s3.bucket, "no-ranges/R1.fastq.gz", tmp_path / "R1.fastq.gz")


def test_a_refused_range_is_not_retried(moto_s3, tmp_path):
    """403 (a policy, expired credentials) and 404 (the object deleted) do not pass: the job
    fails at once instead of after every retry's back-off."""
    put(moto_s3, "refused/R1.fastq.gz", content(20 * KiB, seed=6))
    denied = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        "GetObject",
    )
    client = RecordingClient(moto_s3.client(), fail_ranges={"bytes=0-16383": denied})
    with pytest.raises(
        DownloadError, match=r"S3 refused access: .*: get_object AccessDenied \(HTTP 403\)"
    ):
        S3Downloader(client, part_size=16 * KiB, backoff=0).fetch(
            moto_s3.bucket, "refused/R1.fastq.gz", tmp_path / "R1.fastq.gz"
        )
    assert client.ranges.count("bytes=0-16383") == 1


def test_a_missing_object_is_a_clear_error(moto_s3, tmp_path):
    with pytest.raises(DownloadError) as raised:
        S3Downloader(moto_s3.client()).fetch(moto_s3.bucket, "absent/R1.fastq.gz", tmp_path / "x")
    assert str(raised.value) == (
        "s3://hca-test-area/absent/R1.fastq.gz: no such file in S3 (check the plan's cloud URL "
        "and that the file is still there): head_object HTTP 404"
    )


def test_an_sse_kms_object_is_checked_against_its_s3_checksum(moto_s3, tmp_path):
    """The ETag of an SSE-KMS object is not an MD5 of its content."""
    data = content(20 * KiB, seed=11)
    moto_s3.client().put_object(
        Bucket=moto_s3.bucket,
        Key="kms/R1.fastq.gz",
        Body=data,
        ServerSideEncryption="aws:kms",
        ChecksumAlgorithm="SHA256",
    )
    fetched = S3Downloader(moto_s3.client()).fetch(
        moto_s3.bucket, "kms/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert fetched.verified == "S3 SHA256 checksum"
    assert (tmp_path / "R1.fastq.gz").read_bytes() == data


def test_an_sse_kms_object_without_checksum_is_checked_for_size_only(moto_s3, tmp_path):
    no_checksums = moto_s3.client(request_checksum_calculation="when_required")
    no_checksums.put_object(
        Bucket=moto_s3.bucket,
        Key="kms/R2.fastq.gz",
        Body=b"x" * 100,
        ServerSideEncryption="aws:kms",
    )
    fetched = S3Downloader(moto_s3.client()).fetch(
        moto_s3.bucket, "kms/R2.fastq.gz", tmp_path / "R2.fastq.gz"
    )
    assert fetched.verified.startswith("size only")


def test_only_an_etag_that_is_the_md5_gives_the_md5_before_a_download(moto_s3):
    """The file job compares it with DSP's checksum before downloading: an SSE-KMS ETag taken
    for the MD5 would call DSP's good copy different and upload it again."""
    data = b"x" * 100
    client = moto_s3.client()
    client.put_object(Bucket=moto_s3.bucket, Key="md5/plain", Body=data)
    client.put_object(
        Bucket=moto_s3.bucket, Key="md5/kms", Body=data, ServerSideEncryption="aws:kms"
    )
    downloader = S3Downloader(client)
    plain = downloader.describe(moto_s3.bucket, "md5/plain")
    assert plain.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert downloader.describe(moto_s3.bucket, "md5/kms").md5 is None


def test_a_part_is_on_disk_before_the_sidecar_records_it(moto_s3, tmp_path, monkeypatch):
    """After a node crash the sidecar must not claim parts whose bytes were lost with the page
    cache: a size-only object would be completed with zeros where they were."""
    put(moto_s3, "durable/R1.fastq.gz", content(60 * KiB, seed=13))
    destination = tmp_path / "R1.fastq.gz"
    partial = tmp_path / "R1.fastq.gz.part"
    unsynced: list[int] = []
    real_write_at, real_fsync = s3download._write_at, os.fsync
    real_record = s3download.write_json_atomically

    def write_at(descriptor: int, data: bytes, offset: int) -> None:
        real_write_at(descriptor, data, offset)
        unsynced.append(offset)

    def fsync(descriptor: int) -> None:
        real_fsync(descriptor)
        if os.fstat(descriptor).st_ino == partial.stat().st_ino:
            unsynced.clear()

    def record(path, document) -> None:
        assert not unsynced, f"sidecar written with bytes at {unsynced} not yet on disk"
        real_record(path, document)

    monkeypatch.setattr(s3download, "_write_at", write_at)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(s3download, "write_json_atomically", record)
    S3Downloader(moto_s3.client(), part_size=20 * KiB, workers=1).fetch(
        moto_s3.bucket, "durable/R1.fastq.gz", destination
    )
    assert destination.read_bytes() == content(60 * KiB, seed=13)


def test_an_interruption_does_not_wait_for_the_parts_in_flight(moto_s3, tmp_path):
    """bkill sends SIGKILL about 10 s after SIGTERM: the job must end (and write its result)
    without first finishing every range being downloaded."""
    put(moto_s3, "slow/R1.fastq.gz", content(64 * KiB, seed=14))

    class Stop(Exception):
        pass

    class Slow(RecordingClient):
        def get_object(self, **kwargs: Any) -> Any:
            answer = super().get_object(**kwargs)
            data = answer["Body"].read()

            class Body:
                def iter_chunks(self, size: int):
                    for start in range(0, len(data), KiB):
                        time.sleep(0.05)  # 32 KiB: 1.6 s a part
                        yield data[start : start + KiB]

                def close(self) -> None:
                    pass

            return {**answer, "Body": Body()}

    def interrupt(signum: int, frame: object) -> None:
        raise Stop

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    started = time.monotonic()
    try:
        with pytest.raises(Stop):
            S3Downloader(Slow(moto_s3.client()), part_size=32 * KiB, workers=2).fetch(
                moto_s3.bucket, "slow/R1.fastq.gz", tmp_path / "R1.fastq.gz"
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 1.0
    assert not (tmp_path / "R1.fastq.gz.part.json").exists()  # no part was finished


def test_a_dsse_kms_object_is_not_checked_as_if_its_etag_were_an_md5(moto_s3, tmp_path):
    """DSSE-KMS ("aws:kms:dsse") objects, like SSE-KMS ones, have an ETag that is not the MD5
    of their content: treating it as one fails every download of a correct copy, for good."""
    data = content(20 * KiB, seed=12)
    moto_s3.client().put_object(
        Bucket=moto_s3.bucket, Key="dsse/R1.fastq.gz", Body=data, ChecksumAlgorithm="SHA256"
    )
    real_etag = moto_s3.client().head_object(Bucket=moto_s3.bucket, Key="dsse/R1.fastq.gz")["ETag"]
    opaque_etag = '"0123456789abcdef0123456789abcdef"'  # what S3 sends: not the content's MD5

    class DualLayerKms(RecordingClient):
        def head_object(self, **kwargs: Any) -> Any:
            answer = super().head_object(**kwargs)
            return {**answer, "ServerSideEncryption": "aws:kms:dsse", "ETag": opaque_etag}

        def get_object(self, **kwargs: Any) -> Any:
            assert kwargs["IfMatch"] == opaque_etag
            return super().get_object(**{**kwargs, "IfMatch": real_etag})

    fetched = S3Downloader(DualLayerKms(moto_s3.client())).fetch(
        moto_s3.bucket, "dsse/R1.fastq.gz", tmp_path / "R1.fastq.gz"
    )
    assert fetched.verified == "S3 SHA256 checksum"
    assert (tmp_path / "R1.fastq.gz").read_bytes() == data


def test_a_full_disk_is_reported_with_the_file_being_written(moto_s3, tmp_path, monkeypatch):
    """os.pwrite's ENOSPC names no file: the job's error said only 'download: [Errno 28] No
    space left on device', not which object nor where it was being written."""
    put(moto_s3, "full/R1.fastq.gz", content(40 * KiB, seed=15))

    def full_disk(descriptor: int, data: bytes, offset: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(s3download, "_write_at", full_disk)
    with pytest.raises(DownloadError) as raised:
        S3Downloader(moto_s3.client(), part_size=20 * KiB, attempts=1).fetch(
            moto_s3.bucket, "full/R1.fastq.gz", tmp_path / "R1.fastq.gz"
        )
    message = str(raised.value)
    assert "s3://hca-test-area/full/R1.fastq.gz" in message
    assert str(tmp_path) in message and "No space left on device" in message
    assert (tmp_path / "R1.fastq.gz.part").exists()  # kept: a later run resumes it
