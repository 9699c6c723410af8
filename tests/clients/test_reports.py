"""Blockers readiness and validation reports, parsed from the services' JSON."""

from __future__ import annotations

import pytest

from hca_archive.clients import ArchiveSubmission, Blockers, Envelope, ValidationReport

READY = {
    "notReadyFileCount": 0,
    "validationIssuesPerDataTypeId": {},
    "totalMetadataBlockers": 0,
    "emptySubmission": False,
    "anyPendingValidationResult": False,
}
MISSING = "The file [{}] referenced in the metadata is not exists on the file storage area."


def test_ready_when_nothing_blocks():
    blockers = Blockers.from_json(READY)
    assert blockers.ready
    assert blockers.summary() == "ready to complete"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"notReadyFileCount": 3}, "3 file(s) not ready"),
        (
            {
                "totalMetadataBlockers": 2,
                "validationIssuesPerDataTypeId": {
                    "samples": {"displayName": "Samples", "count": 2}
                },
            },
            "2 metadata blocker(s) (Samples: 2)",
        ),
        ({"anyPendingValidationResult": True}, "validation still pending"),
        ({"emptySubmission": True}, "the submission is empty"),
    ],
)
def test_each_blocker_alone_makes_it_not_ready(change, reason):
    blockers = Blockers.from_json({**READY, **change})
    assert not blockers.ready
    assert blockers.summary() == f"not ready: {reason}"


def test_blockers_must_be_an_object():
    with pytest.raises(ValueError):
        Blockers.from_json(None)


def report(errors: dict, pending: list | None = None) -> ValidationReport:
    return ValidationReport.from_json({"errors": errors, "pending": pending or []})


def test_only_missing_files():
    rep = report(
        {
            "run/1": [{"FileReference": [MISSING.format("a.bam")]}],
            "run/2": [{"FileReference": [MISSING.format("b.bam"), MISSING.format("c.bam")]}],
        }
    )
    assert len(rep.file_reference_errors) == 3
    assert rep.metadata_errors == ()
    assert rep.summary() == (
        "0 error(s) uploading cannot fix, 3 data file(s) not uploaded yet, 0 result(s) pending"
    )


def test_metadata_errors_are_listed_for_a_wrangler():
    rep = report(
        {
            "NoSubmittable": [{"Core": ["submission has no project"]}],
            "samples/9": [
                {"Biosamples": ["organism\nis required"]},
                {"FileReference": [MISSING.format("a.bam")]},
            ],
        },
        pending=["samples/10"],
    )
    assert len(rep.metadata_errors) == 2
    assert rep.pending == ("samples/10",)
    assert rep.summary().splitlines() == [
        "2 error(s) uploading cannot fix, 1 data file(s) not uploaded yet, 1 result(s) pending",
        "- NoSubmittable: Core: submission has no project",
        "- samples/9: Biosamples: organism is required",
    ]


def test_clean_report_and_long_lists():
    assert report({}).clean
    assert report({}).summary() == "validation clean"
    many = report({"s": [{"V": [f"problem {n}" for n in range(30)]}]})
    lines = many.summary(limit=5).splitlines()
    assert len(lines) == 7 and lines[-1] == "- ... and 25 more"


JUNK = [None, 0, 1.5, True, "", "x", [], {}, [None], {"x": []}]
SAMPLES = {
    Blockers.from_json: {**READY, "validationIssuesPerDataTypeId": {"t": {"count": 1}}},
    ValidationReport.from_json: {"errors": {"s": [{"V": ["m"]}]}, "pending": ["p"]},
    Envelope.from_json: {"uuid": {"uuid": "u"}, "submissionState": "Archiving", "_links": {}},
    ArchiveSubmission.from_json: {"dspUuid": "d", "fileUploadPlan": [], "errors": [{}]},
}


@pytest.mark.parametrize("parse", list(SAMPLES), ids=lambda p: p.__qualname__)
def test_service_answers_of_any_shape_parse_or_raise_value_error(parse):
    """Answers are untrusted too: a wrong type anywhere is a ValueError, never a crash."""
    sample = SAMPLES[parse]
    for junk in JUNK:
        candidates = [junk, *({**sample, key: junk} for key in sample)]
        candidates += [{**sample, key: {"k": junk}} for key in sample]
        candidates += [{**sample, key: [junk]} for key in sample]
        for candidate in candidates:
            try:
                parsed = parse(candidate)
            except ValueError:
                continue
            assert isinstance(parsed, parse.__self__), (candidate, parsed)
