"""A plan of hundreds of jobs: the story, the failure and the notification give counts and the
first few of each kind, not a line per job (the audit record keeps every one)."""

from __future__ import annotations

from typing import Any

import pytest

from hca_archive.orchestration import report as report_module
from hca_archive.orchestration.notifications import describe_run

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"
PARAMS = {"submission_uuid": UUID, "environment": "dev", "runner": "lsf", "dry_run": False}
JOBS = 500
FAILED = 30


def large_report() -> dict[str, Any]:
    labels = [f"m{n}/r{n}.bam" for n in range(JOBS)]
    failed = labels[:FAILED]
    outcomes = [f"{label}: failed to upload" for label in failed] + [
        f"{label}: 1 job(s) archived" for label in labels[FAILED:]
    ]
    return {
        "run_id": "sweep__dev__" + UUID,
        "params": PARAMS,
        "dsp_submission": "d5p",
        "steps": [
            {"step": "fetch_plan", "states": ["success"], "seconds": 1, "outcomes": ["plan"]},
            {
                "step": "run_lsf",
                "states": ["failed"] * FAILED + ["success"] * (JOBS - FAILED),
                "seconds": 9000,
                "outcomes": outcomes,
                "failures": outcomes[:FAILED],
            },
        ],
        "files": [
            {"name": f"r{n}.bam", "bytes": 1000, "md5": f"{n:032x}", "upload": "uploaded"}
            for n in range(FAILED, JOBS)
        ],
        "failed_jobs": [{"job": label, "error": "failed to upload"} for label in failed],
        "accessions": [
            {"type": "sequencingRun", "alias": f"HCA_run_{n}", "accession": f"ERR{n:06d}"}
            for n in range(JOBS)
        ],
    }


def test_the_story_of_a_large_plan_gives_counts_and_the_first_failures() -> None:
    lines = report_module.render_story(large_report())
    assert len(lines) < 3 * report_module.DETAIL_LIMIT
    assert max(map(len, lines)) < 5000
    story = "\n".join(lines)
    assert f"run_lsf: {FAILED} failed, {JOBS - FAILED} success in 9000s" in story
    assert "m0/r0.bam: failed to upload" in story
    assert f"... and {FAILED - report_module.DETAIL_LIMIT} more" in story
    assert (
        f"files: {JOBS - FAILED}, {(JOBS - FAILED) * 1000} bytes ({JOBS - FAILED} uploaded)"
        in story
    )
    assert f"accessions: {JOBS} of {JOBS} entities ({JOBS} sequencingRun)" in story


def test_a_small_plan_keeps_a_line_per_file_and_accession() -> None:
    report = large_report()
    report["files"] = report["files"][:3]
    report["accessions"] = report["accessions"][:3]
    story = report_module.render_story(report)
    assert "file r30.bam: 1000 bytes md5 " + f"{30:032x}" + " (uploaded)" in story
    assert "accession sequencingRun HCA_run_0: ERR000000" in story


def test_the_reason_a_large_plan_failed_is_bounded() -> None:
    reason = report_module.failure_reason(large_report()["steps"][1])
    assert reason.count("failed to upload") == report_module.DETAIL_LIMIT
    assert reason.endswith(f"... and {FAILED - report_module.DETAIL_LIMIT} more")


def test_the_notification_of_a_large_plan_lists_the_first_failed_jobs_and_counts_the_rest() -> None:
    text = describe_run(large_report(), False).text
    assert text.count("Failed job ") == report_module.DETAIL_LIMIT
    assert f"... and {FAILED - report_module.DETAIL_LIMIT} more failed jobs" in text
    accessions = describe_run({**large_report(), "failed_jobs": [], "steps": []}, True).text
    assert accessions.count("Accession ") == report_module.DETAIL_LIMIT
    assert f"... and {JOBS - report_module.DETAIL_LIMIT} more accessions" in accessions


@pytest.mark.parametrize(
    "hostile",
    [
        "![x](https://evil.example/pixel.png)",
        "[clear it here](https://evil.example/)",
        "ERR1\n\n# Archived, nothing to do",
    ],
)
def test_service_text_in_the_note_is_shown_as_text_not_markdown(hostile: str) -> None:
    """Airflow renders a run's note as Markdown: an accession or DSP uuid from the archiver must
    not become a link, an image fetched from elsewhere, or a heading."""
    report = {
        **large_report(),
        "dsp_submission": hostile,
        "accessions": [{"type": "study", "alias": "s", "accession": hostile}],
    }
    note = report_module.render_note(report)
    assert "\n" not in note
    for opening in ("](", "[", "!["):
        assert opening not in note.replace("\\[", "").replace("\\]", "").replace("\\(", "")


def test_service_text_in_the_story_stays_on_its_line() -> None:
    report = large_report()
    report["accessions"] = [{"type": "study", "alias": "s\nfile forged: 0 bytes", "accession": "E"}]
    story = "\n".join(report_module.render_story(report)).splitlines()
    assert not [line for line in story if line.startswith("file forged")]
