"""Validator warnings come through the archiver as errors; DSP's blockers say they block
nothing. services.md: "warnings also appear as errors" (validationErrors) and "A submission is
ready to complete when no file is not-ready, there are no metadata blockers, nothing is pending,
and it is not empty." A warning must not stop a run DSP would accept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hca_archive.archiving import RunStopped, metadata_progress, validation_progress
from hca_archive.clients import ArchiverClient
from tests.clients.stub_server import Reply, StubServer

pytestmark = pytest.mark.integration

DSP = "b729f228-0000-4000-8000-000000000001"
SAMPLE = "https://submission.ebi.ac.uk/api/samples/5f0c"
RUN = "https://submission.ebi.ac.uk/api/sequencingRuns/77aa"
WARNING = {"Biosamples": ["Recommended field 'collection date' is missing (warning)"]}
MISSING = {
    "FileReference": [
        "file m1_1.bam referenced in the metadata is not exists on the file storage area"
    ]
}


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer().start()
    yield server
    server.stop()


def blockers(not_ready: int, metadata: int, per_type: dict) -> dict:
    return {
        "notReadyFileCount": not_ready,
        "validationIssuesPerDataTypeId": per_type,
        "totalMetadataBlockers": metadata,
        "emptySubmission": False,
        "anyPendingValidationResult": False,
    }


def answer(stub: StubServer, errors: dict, blockers_summary: dict) -> None:
    """The archiver's validation errors and DSP's blockers, as the stub serves them."""
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/validationErrors",
        Reply(200, {"errors": errors, "pending": []}),
    )
    stub.on("GET", f"/archiveSubmissions/{DSP}/blockers", Reply(200, blockers_summary))


def test_a_warning_on_a_ready_submission_does_not_stop_the_run(stub):
    answer(stub, {SAMPLE: [WARNING]}, blockers(0, 0, {}))
    archiver = ArchiverClient(stub.url, "key", retries=0)

    assert validation_progress(archiver, DSP).done


def test_a_warning_while_files_are_awaited_does_not_stop_the_run(stub):
    per_type = {"sequencingRuns": {"displayName": "Sequencing runs", "count": 1}}
    answer(stub, {SAMPLE: [WARNING], RUN: [MISSING]}, blockers(1, 1, per_type))
    archiver = ArchiverClient(stub.url, "key", retries=0)

    progress = metadata_progress(archiver, DSP)
    assert progress.done and progress.value == {"awaited_files": 1}


ERROR = {"Biosamples": ["Mandatory field 'organism' is missing"]}


def test_an_error_dsp_counts_as_a_blocker_stops_the_run(stub):
    """The other side of the warnings above: the same kind of message, counted by DSP."""
    per_type = {"samples": {"displayName": "Samples", "count": 1}}
    answer(stub, {SAMPLE: [ERROR]}, blockers(0, 1, per_type))
    archiver = ArchiverClient(stub.url, "key", retries=0)

    with pytest.raises(RunStopped, match=f"^validation failed for DSP submission {DSP}"):
        validation_progress(archiver, DSP)
    with pytest.raises(RunStopped, match="organism"):
        metadata_progress(archiver, DSP)


def test_an_error_beside_awaited_files_stops_the_run(stub):
    """DSP counts the missing file's submittable and the sample: more blockers than missing
    files, so the message on the sample blocks."""
    per_type = {
        "samples": {"displayName": "Samples", "count": 1},
        "sequencingRuns": {"displayName": "Sequencing runs", "count": 1},
    }
    answer(stub, {SAMPLE: [ERROR], RUN: [MISSING]}, blockers(1, 2, per_type))
    archiver = ArchiverClient(stub.url, "key", retries=0)

    with pytest.raises(RunStopped, match=f"^metadata validation failed for DSP submission {DSP}"):
        metadata_progress(archiver, DSP)


def test_an_error_names_the_entity_a_wrangler_knows(stub):
    """DSP keys errors by its own URLs; the wrangler knows the submission by its aliases."""
    answer(stub, {SAMPLE: [ERROR], RUN: [MISSING]}, blockers(1, 2, {}))
    entities = [
        {"type": "sample", "alias": "HCA_biomaterial_donor-7", "dspUuid": "5F0C"},
        {"type": "sequencingRun", "alias": "HCA_run_1", "dspUuid": "77aa"},
    ]
    page = {"number": 0, "totalPages": 1}
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/entities",
        Reply(200, {"entities": entities, "page": page}),
    )
    archiver = ArchiverClient(stub.url, "key", retries=0)

    for progress in (metadata_progress, validation_progress):
        with pytest.raises(RunStopped) as stopped:
            progress(archiver, DSP)
        assert f"- sample HCA_biomaterial_donor-7 ({SAMPLE}): Biosamples: Mandatory field" in str(
            stopped.value
        )


def test_entities_the_archiver_cannot_list_leave_the_urls(stub):
    answer(stub, {SAMPLE: [ERROR], RUN: [MISSING]}, blockers(1, 2, {}))
    stub.on(
        "GET", f"/archiveSubmissions/{DSP}/entities", Reply(500, "<html>Error</html>", "text/html")
    )
    archiver = ArchiverClient(stub.url, "key", retries=0)

    with pytest.raises(RunStopped, match=f"- {SAMPLE}: Biosamples: Mandatory field 'organism'"):
        metadata_progress(archiver, DSP)


def test_hostile_names_and_validators_stay_on_their_line_and_are_cut(stub):
    """The archiver's entity type and alias, and DSP's validator names, are untrusted text: a
    line break in one must not forge a line of the wrangler's message, nor a huge one bury it."""
    forged = "Biosamples\n- https://submission.ebi.ac.uk/api/samples/0000: Fine: all good"
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/validationErrors",
        Reply(200, {"errors": {SAMPLE: [{forged: ["bad\nvalue"]}]}, "pending": []}),
    )
    per_type = {"samples": {"displayName": "Samples", "count": 1}}
    stub.on("GET", f"/archiveSubmissions/{DSP}/blockers", Reply(200, blockers(0, 1, per_type)))
    entities = [{"type": "sample\r\n- forged", "alias": "A" * 100_000, "dspUuid": "5f0c"}]
    stub.on(
        "GET",
        f"/archiveSubmissions/{DSP}/entities",
        Reply(200, {"entities": entities, "page": {"number": 0, "totalPages": 1}}),
    )
    archiver = ArchiverClient(stub.url, "key", retries=0)

    with pytest.raises(RunStopped) as stopped:
        metadata_progress(archiver, DSP)
    lines = str(stopped.value).splitlines()
    assert len(lines) == 3, lines  # the heading, the counts, one error
    assert lines[2].startswith("- sample - forged AAA")
    assert len(lines[2]) < 1000
