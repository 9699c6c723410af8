"""ArchiverClient against a stub archiver service."""

from __future__ import annotations

import pytest

from hca_archive.clients import ArchiverClient
from hca_archive.http import ServiceError
from tests.clients.stub_server import Reply, Seen

pytestmark = pytest.mark.integration

KEY = "archiver-key-7f3a"
DSP = "b729f228-0000-4000-8000-000000000001"

RECORD = {
    "created": "2020-09-02T10:11:12.345Z",
    "dspUuid": DSP,
    "dspUrl": f"https://submission.ebi.ac.uk/api/submissions/{DSP}",
    "submissionUuid": "ingest-1",
    "fileUploadPlan": [{"manifest_id": "m1"}],
    "errors": [{"errorCode": "ingest.archiver.x", "message": "went wrong", "details": {"a": 1}}],
}


@pytest.fixture
def archiver(stub, fast) -> ArchiverClient:
    return ArchiverClient(stub.url, KEY, **fast)


def test_every_call_carries_the_api_key(stub, archiver):
    stub.on("GET", f"/archiveSubmissions/{DSP}", Reply(200, RECORD))
    archiver.get(DSP)
    assert stub.seen[0].headers["Api-Key"] == KEY


def test_trigger_archive_posts_once_even_when_the_server_fails(stub, archiver):
    stub.on(
        "POST", "/archiveSubmissions", Reply(500, "<html><title>Error</title></html>", "text/html")
    )

    with pytest.raises(ServiceError, match="HTTP 500: Error"):
        archiver.trigger_archive("ingest-1", exclude_types=["project"])

    [seen] = stub.requests_to("/archiveSubmissions")
    assert seen.json() == {
        "submission_uuid": "ingest-1",
        "alias_prefix": "HCA",
        "exclude_types": ["project"],
    }


def test_trigger_archive_returns_the_message(stub, archiver):
    stub.on("POST", "/archiveSubmissions", Reply(200, {"message": "successfully triggered!"}))
    assert archiver.trigger_archive("ingest-1") == "successfully triggered!"
    assert "exclude_types" not in stub.seen[0].json()


def test_latest_is_none_until_the_record_exists(stub, archiver):
    stub.on("GET", "/latestArchiveSubmission/ingest-1", Reply(404, None), Reply(200, RECORD))

    assert archiver.latest("ingest-1") is None
    record = archiver.latest("ingest-1")

    assert record is not None
    assert record.dsp_uuid == DSP
    assert record.submission_uuid == "ingest-1"
    assert record.file_upload_plan == ({"manifest_id": "m1"},)
    assert record.errors[0].error_code == "ingest.archiver.x"
    assert record.errors[0].details == {"a": 1}


def test_ids_are_quoted_as_one_path_segment(stub, archiver):
    stub.on("GET", "/latestArchiveSubmission/..%2Fadmin", Reply(404, None))
    assert archiver.latest("../admin") is None
    assert stub.seen[0].path == "/latestArchiveSubmission/..%2Fadmin"


def test_validation_errors_tell_missing_files_from_metadata_errors(stub, archiver):
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/validationErrors",
        Reply(
            200,
            {
                "errors": {
                    "https://dsp/api/sequencingRuns/1": [
                        {
                            "FileReference": [
                                "The file [m1_1.bam] referenced in the metadata is not exists on"
                                " the file storage area."
                            ]
                        }
                    ],
                    "https://dsp/api/samples/2": [{"Biosamples": ["organism is required"]}],
                },
                "pending": [],
            },
        ),
    )

    report = archiver.validation_errors(DSP)

    assert len(report.file_reference_errors) == 1
    assert [i.message for i in report.metadata_errors] == ["organism is required"]


def test_validation_results_in_a_bare_object_and_a_lone_pending_entry_still_count(stub, archiver):
    """A report is clean only when nothing is wrong or pending: a result or a pending entry in
    another shape than a list is counted, not dropped."""
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/validationErrors",
        Reply(
            200,
            {
                "errors": {"https://dsp/api/samples/3": {"Biosamples": "organism is required"}},
                "pending": "https://dsp/api/samples/4",
            },
        ),
    )

    report = archiver.validation_errors(DSP)

    assert [i.message for i in report.metadata_errors] == ["organism is required"]
    assert report.pending == ("https://dsp/api/samples/4",)
    assert not report.clean


def test_a_record_with_the_plan_as_an_object_keeps_its_jobs(stub, archiver):
    plan = [{"manifest_id": "m1"}, {"manifest_id": "m2"}]
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}",
        Reply(200, {**RECORD, "fileUploadPlan": {"jobs": plan}}),
    )
    assert archiver.get(DSP).file_upload_plan == tuple(plan)


def test_blockers(stub, archiver):
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/blockers",
        Reply(
            200,
            {
                "notReadyFileCount": 0,
                "validationIssuesPerDataTypeId": {},
                "totalMetadataBlockers": 0,
                "emptySubmission": False,
                "anyPendingValidationResult": False,
            },
        ),
    )
    assert archiver.blockers(DSP).ready


def test_file_upload_plan_is_read_from_the_attachment(stub, archiver):
    plan = {"jobs": [{"manifest_id": "m1"}]}
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/fileUploadPlan",
        Reply(
            200,
            plan,
            "application/octet-stream",
            {"Content-Disposition": f"attachment; filename=FILE_UPLOAD_PLAN_{DSP}.json"},
        ),
    )
    assert archiver.file_upload_plan(DSP) == plan


def test_complete_is_sent_once(stub, archiver):
    stub.on("POST", f"/archiveSubmissions/{DSP}/complete", Reply(502, "bad gateway"))
    with pytest.raises(ServiceError):
        archiver.complete(DSP)
    assert len(stub.requests_to(f"/archiveSubmissions/{DSP}/complete")) == 1

    stub.on("POST", f"/archiveSubmissions/{DSP}/complete", Reply(202, {"message": "ok"}))
    assert archiver.complete(DSP) == "ok"


def test_entities_are_collected_across_pages(stub, fast):
    entities = [
        {"type": "sample", "alias": f"HCA_s{n}", "dspUuid": f"d{n}", "accession": f"SAMEA{n}"}
        for n in range(5)
    ]

    def answer(seen: Seen) -> Reply:
        page, size = int(seen.query["page"][0]), int(seen.query["size"][0])
        return Reply(
            200,
            {
                "entities": entities[page * size : (page + 1) * size],
                "page": {"number": page, "totalPages": 3},
            },
        )

    stub.on("GET", f"/archiveSubmissions/{DSP}/entities", answer)

    found = ArchiverClient(stub.url, KEY, page_size=2, **fast).entities(DSP)

    assert [(e.type, e.alias, e.dsp_uuid, e.accession) for e in found] == [
        ("sample", f"HCA_s{n}", f"d{n}", f"SAMEA{n}") for n in range(5)
    ]


def test_wrong_key_is_reported_with_the_servers_message(stub, archiver):
    stub.on("GET", "/latestArchiveSubmission/ingest-1", Reply(401, {"message": "invalid Api-Key"}))
    with pytest.raises(ServiceError) as raised:
        archiver.latest("ingest-1")
    assert raised.value.status == 401
    assert raised.value.message == "invalid Api-Key"


def test_an_api_key_is_required():
    with pytest.raises(ValueError, match="API key"):
        ArchiverClient("http://127.0.0.1:1", "")


def test_an_entity_that_is_no_object_is_skipped(stub, archiver):
    entity = {"type": "sample", "alias": "HCA_s0", "dspUuid": "d0", "accession": "SAMEA0"}
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/entities",
        Reply(200, {"entities": [None, "x", entity], "page": {"number": 0, "totalPages": 1}}),
    )
    assert [e.alias for e in archiver.entities(DSP)] == ["HCA_s0"]
