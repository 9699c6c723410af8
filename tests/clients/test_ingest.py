"""IngestClient against a stub ingest API."""

from __future__ import annotations

import pytest

from hca_archive.clients import IngestClient
from hca_archive.http import ServiceError
from tests.clients.stub_server import Reply, Seen

pytestmark = pytest.mark.integration

FIND = "/submissionEnvelopes/search/findByUuidUuid"
BY_STATE = "/submissionEnvelopes/search/findBySubmissionState"


def envelope_doc(uuid: str, state: str = "Archiving") -> dict:
    return {
        "uuid": {"uuid": uuid},
        "submissionState": state,
        "submissionDate": "2020-09-01T10:00:00Z",
        "updateDate": "2020-09-02T10:00:00Z",
        "_links": {
            "self": {"href": f"http://ingest/submissionEnvelopes/{uuid}"},
            "archived": {"href": f"http://ingest/submissionEnvelopes/{uuid}/archivedEvent"},
        },
    }


def test_find_envelope_uses_the_doubled_uuid_route(stub, fast):
    stub.on("GET", FIND, Reply(200, envelope_doc("u-1")))

    envelope = IngestClient(stub.url, **fast).find_envelope("u-1")

    assert envelope is not None
    assert (envelope.uuid, envelope.state) == ("u-1", "Archiving")
    assert envelope.submission_date == "2020-09-01T10:00:00Z"
    assert envelope.links["archived"].endswith("/archivedEvent")
    assert stub.requests_to(FIND)[0].query == {"uuid": ["u-1"]}


def test_unknown_envelope_is_none(stub, fast):
    stub.on("GET", FIND, Reply(404, None))
    assert IngestClient(stub.url, **fast).find_envelope("nope") is None


@pytest.mark.parametrize(
    "answer",
    [{"submissionState": "Archiving"}, {"uuid": {"uuid": ""}, "submissionState": "Archiving"}],
)
def test_an_answer_without_uuid_is_a_service_error(stub, fast, answer):
    stub.on("GET", FIND, Reply(200, answer))
    with pytest.raises(ServiceError, match="envelope has no uuid"):
        IngestClient(stub.url, **fast).find_envelope("u-1")


def test_an_envelope_without_a_state_is_in_none(stub, fast):
    """Only an envelope ingest says is Archiving is archived: a missing state is no state."""
    doc = envelope_doc("u-1")
    del doc["submissionState"]
    stub.on("GET", FIND, Reply(200, doc))
    assert IngestClient(stub.url, **fast).find_envelope("u-1").state == ""


def paged_envelopes(total: int, size: int):
    uuids = [f"u-{n}" for n in range(total)]
    pages = -(-total // size)

    def answer(seen: Seen) -> Reply:
        page = int(seen.query["page"][0])
        assert int(seen.query["size"][0]) == size
        links = {"self": {"href": "http://elsewhere.example/x"}}
        if page + 1 < pages:
            links["next"] = {"href": "http://elsewhere.example/next"}
        return Reply(
            200,
            {
                "_embedded": {
                    "submissionEnvelopes": [
                        envelope_doc(u) for u in uuids[page * size : (page + 1) * size]
                    ]
                },
                "_links": links,
                "page": {"size": size, "totalElements": total, "number": page, "totalPages": pages},
            },
        )

    return uuids, answer


def test_iter_envelopes_walks_every_page(stub, fast):
    uuids, answer = paged_envelopes(total=7, size=3)
    stub.on("GET", BY_STATE, answer)

    envelopes = list(IngestClient(stub.url, page_size=3, **fast).iter_envelopes("Archiving"))

    assert [e.uuid for e in envelopes] == uuids
    seen = stub.requests_to(BY_STATE)
    assert [s.query["page"] for s in seen] == [["0"], ["1"], ["2"]]
    assert {s.query["submissionState"][0] for s in seen} == {"ARCHIVING"}


def test_iter_envelopes_of_an_empty_state(stub, fast):
    stub.on("GET", BY_STATE, Reply(200, {"_embedded": {}, "page": {"totalPages": 0}}))
    assert list(IngestClient(stub.url, **fast).iter_envelopes()) == []
    assert len(stub.requests_to(BY_STATE)) == 1
