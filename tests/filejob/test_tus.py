"""The tus client against an in-test tus server: chunks, metadata, tokens, resume, restart."""

from __future__ import annotations

import json
import random

import pytest

from hca_archive.filejob.tus import TusClient, TusError, _origin, encode_metadata
from tests.filejob.tus_stub import CountingTokens, running_tus_stub

pytestmark = pytest.mark.integration

KiB = 1024
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def stub():
    with running_tus_stub() as server:
        yield server


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "out.bam"
    # 100 KiB with no period: a chunk read from the wrong place never matches by chance
    path.write_bytes(random.Random(0).randbytes(100 * KiB))
    return path


def client(stub, **options) -> TusClient:
    return TusClient(stub.endpoint, CountingTokens(), chunk_size=30 * KiB, backoff=0, **options)


def test_metadata_is_base64_per_tus():
    assert encode_metadata({"name": "a b.bam", "x": ""}) == "name YSBiLmJhbQ==,x "
    with pytest.raises(ValueError, match="invalid tus metadata key"):
        encode_metadata({"bad key": "v"})


def test_a_file_is_uploaded_in_chunks_with_creation_metadata_and_a_fresh_token_each_time(
    stub, data_file, tmp_path
):
    result = client(stub).upload(
        data_file,
        name="out.bam",
        submission_id="sub-1",
        md5=MD5,
        state_file=tmp_path / "state.json",
    )
    (upload,) = stub.uploads.values()
    assert bytes(upload.data) == data_file.read_bytes()
    assert upload.metadata == {"jwtToken": "jwt-1", "submissionID": "sub-1", "name": "out.bam"}
    assert stub.methods() == ["POST", "PATCH", "PATCH", "PATCH", "PATCH"]
    tokens = [headers["Authorization"] for _, _, headers in stub.requests]
    assert len(set(tokens)) == len(tokens)
    assert all("Upload-Metadata" not in headers for method, _, headers in stub.requests[1:])
    assert result.resumed_from is None and result.bytes == 100 * KiB
    assert not (tmp_path / "state.json").exists()


def test_a_dropped_chunk_resumes_from_the_servers_offset(stub, data_file, tmp_path):
    stub.drop_after_bytes = [10 * KiB + 5]  # the first PATCH breaks after 10 KiB + 5 bytes
    client(stub).upload(
        data_file,
        name="out.bam",
        submission_id="sub-1",
        md5=MD5,
        state_file=tmp_path / "state.json",
    )
    (upload,) = stub.uploads.values()
    assert bytes(upload.data) == data_file.read_bytes()
    assert stub.methods()[:3] == ["POST", "PATCH", "HEAD"]
    patches = [
        headers["Upload-Offset"] for method, _, headers in stub.requests if method == "PATCH"
    ]
    assert patches[1] == str(10 * KiB + 5)
    assert stub.patched_bytes == data_file.stat().st_size  # nothing was sent twice


def test_a_server_offset_past_the_end_of_the_file_is_not_taken_for_done(stub, data_file, tmp_path):
    stub.drop_after_bytes = [10 * KiB]
    stub.extra_head_offset = 200 * KiB  # the file has 100 KiB
    state = tmp_path / "state.json"
    with pytest.raises(TusError, match=r"reports 215040 bytes of out.bam, which has 102400"):
        client(stub).upload(
            data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
        )
    assert state.exists()  # the next attempt finds the stored upload unusable and starts again
    result = client(stub).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
    )
    assert result.resumed_from is None
    assert stub.methods().count("POST") == 2
    assert bytes(list(stub.uploads.values())[1].data) == data_file.read_bytes()


def test_a_restarted_job_continues_the_upload_it_started(stub, data_file, tmp_path):
    state = tmp_path / "state.json"
    stub.drop_after_bytes = [30 * KiB]
    with pytest.raises(TusError, match="failed 1 times in a row at offset 0"):
        client(stub, attempts=1).upload(
            data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
        )
    assert json.loads(state.read_text())["url"].startswith(stub.endpoint)

    result = client(stub).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
    )
    assert result.resumed_from == 30 * KiB
    assert stub.methods().count("POST") == 1
    (upload,) = stub.uploads.values()
    assert bytes(upload.data) == data_file.read_bytes()
    assert not state.exists()


def test_a_state_file_for_other_content_of_the_same_size_starts_a_new_upload(
    stub, data_file, tmp_path
):
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps(
            {
                "endpoint": stub.endpoint,
                "submission_id": "sub-1",
                "name": "out.bam",
                "size": 100 * KiB,
                "md5": "another-md5",
                "url": f"{stub.endpoint}0123",
            }
        )
    )
    result = client(stub).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
    )
    assert result.resumed_from is None
    assert stub.methods()[0] == "POST"


@pytest.mark.parametrize("status", [404, 410, 403])  # tus 1.0.0 allows each for HEAD
def test_an_upload_the_server_forgot_is_started_again(status, stub, data_file, tmp_path):
    stub.unknown_status = status
    state = tmp_path / "state.json"
    identity = {"endpoint": stub.endpoint, "submission_id": "sub-1", "name": "out.bam", "md5": MD5}
    state.write_text(
        json.dumps({**identity, "size": 100 * KiB, "url": f"{stub.endpoint}{'0' * 32}"})
    )
    client(stub).upload(data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state)
    assert stub.methods()[:2] == ["HEAD", "POST"]
    (upload,) = stub.uploads.values()
    assert bytes(upload.data) == data_file.read_bytes()


def test_a_stored_upload_on_another_host_gets_no_token(stub, data_file, tmp_path):
    state = tmp_path / "state.json"
    identity = {"endpoint": stub.endpoint, "submission_id": "sub-1", "name": "out.bam", "md5": MD5}
    with running_tus_stub() as elsewhere:
        state.write_text(
            json.dumps({**identity, "size": 100 * KiB, "url": f"{elsewhere.endpoint}{'0' * 32}"})
        )
        client(stub).upload(
            data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
        )
        assert elsewhere.methods() == []
    assert stub.methods()[0] == "POST"


# 423: the server still holds the lock of a PATCH whose connection broke; 409: its offset is not
# ours, the retry asks for it
@pytest.mark.parametrize("status", [503, 423, 409])
def test_server_errors_are_retried_and_a_refusal_is_reported(status, stub, data_file, tmp_path):
    stub.patch_statuses = [status]
    client(stub).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "a.json"
    )
    stub.patch_statuses = [403]
    with pytest.raises(TusError, match="HTTP 403"):
        client(stub).upload(
            data_file,
            name="out.bam",
            submission_id="sub-1",
            md5=MD5,
            state_file=tmp_path / "b.json",
        )
    assert stub.methods()[-1] == "PATCH"


def test_only_failures_in_a_row_end_an_upload(stub, data_file, tmp_path):
    """A long upload over a flaky link fails only when one chunk keeps failing, not when the
    failures of a whole day add up to the limit."""
    stub.drop_after_bytes = [5 * KiB, None, 5 * KiB]
    client(stub, attempts=2).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "s.json"
    )
    (upload,) = stub.uploads.values()
    assert bytes(upload.data) == data_file.read_bytes()


def test_a_server_that_takes_chunks_without_moving_its_offset_ends_the_upload(
    stub, data_file, tmp_path
):
    stub.stuck_patches = 5
    with pytest.raises(TusError, match="failed 5 times in a row at offset 0"):
        client(stub).upload(
            data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "s"
        )


def test_an_upload_started_again_is_the_one_a_restart_continues(stub, data_file, tmp_path):
    state = tmp_path / "state.json"
    stub.patch_statuses = [404, 500]  # the upload is forgotten, then its successor fails
    with pytest.raises(TusError, match="failed 2 times in a row"):
        client(stub, attempts=2).upload(
            data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=state
        )
    _first, second = stub.uploads
    assert json.loads(state.read_text())["url"] == f"{stub.endpoint}{second}"


def test_a_rejected_token_is_renewed_before_the_retry(stub, data_file, tmp_path):
    tokens = CountingTokens()
    stub.patch_statuses = [401]
    TusClient(stub.endpoint, tokens, chunk_size=64 * KiB, backoff=0).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "s.json"
    )
    assert tokens.invalidated == 1
    (upload,) = stub.uploads.values()
    assert bytes(upload.data) == data_file.read_bytes()


def test_a_creation_refused_for_its_token_is_retried_with_a_new_one(stub, data_file, tmp_path):
    tokens = CountingTokens()
    stub.post_statuses = [401]
    TusClient(stub.endpoint, tokens, backoff=0).upload(
        data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "s.json"
    )
    first, second = [headers for method, _, headers in stub.requests if method == "POST"]
    assert first["Upload-Metadata"] != second["Upload-Metadata"]
    assert tokens.invalidated == 1
    (upload,) = stub.uploads.values()
    assert upload.metadata["jwtToken"] != "jwt-1"


def test_an_upload_placed_on_another_host_gets_no_tokens(stub, data_file, tmp_path):
    stub.location_prefix = "http://192.0.2.1:8080"
    with pytest.raises(TusError, match="on another host"):
        client(stub).upload(
            data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "s"
        )
    assert stub.methods() == ["POST"]


def test_an_address_with_its_default_port_spelt_out_is_the_same_host():
    """A server may write its upload addresses with the port; only another host, port or
    scheme, or a port that is no number, is elsewhere."""
    assert _origin("https://DSP.example:443/files/abc") == _origin("https://dsp.example/files/")
    assert _origin("http://dsp.example:80/files/abc") == _origin("http://dsp.example/files/")
    assert _origin("https://dsp.example:8443/files/a") != _origin("https://dsp.example/files/")
    assert _origin("http://dsp.example/files/a") != _origin("https://dsp.example/files/")
    assert _origin("https://dsp.example.evil/files/a") != _origin("https://dsp.example/files/")
    assert _origin("https://dsp.example:x/files/a") != _origin("https://dsp.example/files/")


def test_a_redirect_never_takes_the_token_to_another_host(stub, data_file, tmp_path):
    # requests drops Authorization on a redirect to another host, but not Upload-Metadata,
    # which carries the AAP token as jwtToken.
    with running_tus_stub() as other:
        stub.redirect_to = other.endpoint
        with pytest.raises(TusError, match="got 307"):
            client(stub).upload(
                data_file, name="out.bam", submission_id="sub-1", md5=MD5, state_file=tmp_path / "s"
            )
        assert other.requests == []


def test_a_token_requests_refuses_as_a_header_is_not_quoted_in_the_error(stub, data_file, tmp_path):
    """requests' InvalidHeader quotes the header value, here 'Bearer <token>'; JsonHttp hides
    it (http._describe), the tus client let it through into the job's error and the logs."""

    class BrokenTokens(CountingTokens):
        def token(self) -> str:
            return "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.secret-signature\nwrapped"

    with pytest.raises(TusError) as raised:
        TusClient(stub.endpoint, BrokenTokens(), backoff=0).upload(
            data_file,
            name="out.bam",
            submission_id="sub-1",
            md5=MD5,
            state_file=tmp_path / "state.json",
        )
    assert "secret-signature" not in str(raised.value)
    assert "InvalidHeader" in str(raised.value)


def test_a_refusal_as_an_html_page_is_reported_by_its_words_not_its_markup():
    import requests

    response = requests.Response()
    response.status_code = 403
    response.headers["Content-Type"] = "text/html"
    response._content = (
        b"<!DOCTYPE html><html><head><title>403 Forbidden</title><style>body{}</style></head>"
        b"<body><h1>Forbidden</h1><p>Submission sub-1 is not in Draft</p></body></html>"
    )
    tus = TusClient("http://dsp.test/files/", CountingTokens())
    with pytest.raises(TusError) as raised:
        tus._raise_for_status(response, "sending bytes 0-99")
    message = str(raised.value)
    assert message.startswith("sending bytes 0-99: HTTP 403 403 Forbidden")
    assert "Submission sub-1 is not in Draft" in message
    assert "<" not in message and "body{}" not in message
