"""DspClient against a stub DSP."""

from __future__ import annotations

import pytest

from hca_archive.clients import DspClient, dsp_root
from hca_archive.http import ServiceError
from tests.clients.stub_server import Reply, Seen

pytestmark = pytest.mark.integration

SUB = "sub-1"


class FixedTokens:
    def __init__(self) -> None:
        self.issued = 0

    def token(self) -> str:
        return f"jwt-{self.issued}"

    def invalidate(self) -> None:
        self.issued += 1


@pytest.fixture
def tokens() -> FixedTokens:
    return FixedTokens()


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/api/"])
def test_base_url_with_or_without_api(stub, tokens, fast, suffix):
    stub.on("GET", f"/api/submissions/{SUB}/submissionStatus", Reply(200, {"status": "Draft"}))
    dsp = DspClient(stub.url + suffix, tokens, **fast)

    assert dsp.status(SUB) == "Draft"
    assert dsp.tus_endpoint == f"{stub.url}/files/"
    assert dsp.submission_url(SUB) == f"{stub.url}/api/submissions/{SUB}"
    assert stub.seen[0].headers["Authorization"] == "Bearer jwt-0"


def test_dsp_root_rejects_non_http():
    assert dsp_root("https://submission.ebi.ac.uk/api/") == "https://submission.ebi.ac.uk"
    with pytest.raises(ValueError):
        dsp_root("file:///api")


def test_a_refused_token_is_replaced_once(stub, tokens, fast):
    stub.on(
        "GET",
        f"/api/submissions/{SUB}",
        lambda seen: (
            Reply(200, {"id": SUB})
            if seen.headers["Authorization"] == "Bearer jwt-1"
            else Reply(401, {"message": "token expired"})
        ),
    )
    assert DspClient(stub.url, tokens, **fast).submission(SUB) == {"id": SUB}
    assert tokens.issued == 1


def test_a_file_search_refused_for_an_expired_token_is_asked_again_with_a_new_one(
    stub, tokens, fast
):
    """A job looks its files up again before uploading, hours after its first token."""
    stub.on(
        "GET",
        "/api/files/search/by-filename-and-submission",
        lambda seen: (
            Reply(404, None)
            if seen.headers["Authorization"] == "Bearer jwt-1"
            else Reply(401, {"message": "token expired"})
        ),
    )
    assert DspClient(stub.url, tokens, **fast).find_file(SUB, "m1_1.bam") is None
    assert tokens.issued == 1


def test_set_status_patches_and_accepts_an_already_done_transition(stub, tokens, fast):
    path = f"/api/submissions/{SUB}/submissionStatus"
    stub.on("PATCH", path, Reply(200, {"status": "Submitted"}), Reply(400, {"message": "no"}))
    stub.on("GET", path, Reply(200, {"status": "Submitted"}))
    dsp = DspClient(stub.url, tokens, **fast)

    dsp.set_status(SUB, "Submitted")
    dsp.set_status(SUB, "Submitted")  # a repeat after a lost answer

    assert [s.json() for s in stub.seen if s.method == "PATCH"] == [{"status": "Submitted"}] * 2


def test_set_status_refused_is_an_error(stub, tokens, fast):
    path = f"/api/submissions/{SUB}/submissionStatus"
    stub.on("PATCH", path, Reply(400, {"message": "Submitted is not available"}))
    stub.on("GET", path, Reply(200, {"status": "Draft"}))

    with pytest.raises(ServiceError, match="Submitted is not available"):
        DspClient(stub.url, tokens, **fast).set_status(SUB, "Submitted")


def test_find_file(stub, tokens, fast):
    doc = {
        "filename": "m1_1.bam",
        "totalSize": 12,
        "checksum": "abc",
        "status": "READY_FOR_ARCHIVE",
    }

    def answer(seen: Seen) -> Reply:
        if seen.query == {"submissionId": [SUB], "filename": ["m1_1.bam"]}:
            return Reply(200, doc)
        return Reply(404, None)

    stub.on("GET", "/api/files/search/by-filename-and-submission", answer)
    dsp = DspClient(stub.url, tokens, **fast)

    assert dsp.find_file(SUB, "m1_1.bam") == doc
    assert dsp.find_file(SUB, "other.bam") is None


def test_blockers_and_processing_statuses(stub, tokens, fast):
    stub.on(
        "GET",
        f"/api/submissions/{SUB}/submissionBlockersSummary",
        Reply(200, {"notReadyFileCount": 2, "totalMetadataBlockers": 0}),
    )
    items = [
        {
            "submittableType": "Sample",
            "alias": f"s{n}",
            "status": "Completed",
            "accession": f"SAMEA{n}",
            "archive": "BioSamples",
        }
        for n in range(3)
    ]

    def statuses(seen: Seen) -> Reply:
        page = int(seen.query["page"][0])
        return Reply(
            200,
            {
                "_embedded": {"processingStatuses": items[page * 2 : page * 2 + 2]},
                "page": {"number": page, "totalPages": 2},
            },
        )

    search = "/api/processingStatuses/search/by-submission"
    link = {"href": f"{stub.url}{search}?submissionId={SUB}"}
    stub.on("GET", f"/api/submissions/{SUB}", Reply(200, {"_links": {"processingStatuses": link}}))
    stub.on("GET", search, statuses)
    dsp = DspClient(stub.url, tokens, page_size=2, **fast)

    blockers = dsp.blockers(SUB)
    assert not blockers.ready and blockers.not_ready_file_count == 2
    found = dsp.processing_statuses(SUB)
    assert {seen.query["submissionId"][0] for seen in stub.requests_to(search)} == {SUB}
    assert [(p.alias, p.status, p.accession) for p in found] == [
        (f"s{n}", "Completed", f"SAMEA{n}") for n in range(3)
    ]


def test_an_answer_of_the_wrong_shape_is_a_service_error(stub, tokens, fast):
    stub.on("GET", f"/api/submissions/{SUB}/submissionBlockersSummary", Reply(200, ["?"]))
    stub.on("GET", f"/api/submissions/{SUB}/submissionStatus", Reply(200, {"state": "Draft"}))
    dsp = DspClient(stub.url, tokens, **fast)

    with pytest.raises(ServiceError, match="unexpected answer: a blockers summary must be"):
        dsp.blockers(SUB)
    with pytest.raises(ServiceError, match="answer has no status"):
        dsp.status(SUB)


def test_find_file_takes_no_record_of_another_submission_or_file(stub, tokens, fast):
    """The search is scoped by its query, but the answer is checked: a record DSP (or a
    deployment answering with a list) gives for another submission or file name must be
    neither "held" (the job would skip its upload) nor taken for "missing"."""
    mine = {"filename": "m1_1.bam", "submissionId": SUB, "totalSize": 12, "uploadedSize": 12}
    theirs = dict(mine, submissionId="sub-2")
    other_name = dict(mine, filename="m2_1.bam")
    answers = {
        "theirs.bam": Reply(200, dict(theirs, filename="theirs.bam")),
        "renamed.bam": Reply(200, dict(other_name)),
        "m1_1.bam": Reply(200, {"_embedded": {"files": [theirs, other_name, mine]}}),
        "none.bam": Reply(200, {"_embedded": {"files": [dict(theirs, filename="none.bam")]}}),
        "listed.bam": Reply(200, [theirs, dict(mine, filename="listed.bam")]),  # a bare list
    }
    stub.on(
        "GET",
        "/api/files/search/by-filename-and-submission",
        lambda seen: answers[seen.query["filename"][0]],
    )
    dsp = DspClient(stub.url, tokens, **fast)

    assert dsp.find_file(SUB, "m1_1.bam") == mine
    assert dsp.find_file(SUB, "none.bam") is None  # a list of others: this one is not there
    assert dsp.find_file(SUB, "listed.bam") == dict(mine, filename="listed.bam")
    with pytest.raises(ServiceError, match="submission sub-2, not sub-1"):
        dsp.find_file(SUB, "theirs.bam")
    with pytest.raises(ServiceError, match=r"file 'm2_1\.bam', not 'renamed\.bam'"):
        dsp.find_file(SUB, "renamed.bam")


@pytest.mark.parametrize("body", ['"m1_1.bam"', "12", "null", b""])
def test_find_file_refuses_an_answer_that_is_no_file_document(stub, tokens, fast, body):
    """Only a 404 (or an empty search page) means DSP lacks the file: any other answer that
    is not a file document is an error, so a job neither uploads a file again nor skips it."""
    stub.on("GET", "/api/files/search/by-filename-and-submission", Reply(200, body))
    with pytest.raises(ServiceError):
        DspClient(stub.url, tokens, **fast).find_file(SUB, "m1_1.bam")
