"""The wait for validation ends on what waiting cannot change."""

from __future__ import annotations

import pytest

from hca_archive.archiving import RunStopped, validation_progress
from hca_archive.clients.archiver import ValidationReport
from hca_archive.clients.dsp import Blockers

DSP_UUID = "b729f228-0000-4000-8000-000000000001"


class Archiver:
    def __init__(self, blockers: dict) -> None:
        self.summary = blockers

    def validation_errors(self, dsp_uuid: str) -> ValidationReport:
        return ValidationReport.from_json({"errors": {}, "pending": []})

    def blockers(self, dsp_uuid: str) -> Blockers:
        return Blockers.from_json(self.summary)


def test_an_empty_submission_stops_the_wait() -> None:
    archiver = Archiver({"emptySubmission": True, "notReadyFileCount": 0})
    with pytest.raises(RunStopped, match=f"DSP submission {DSP_UUID} is empty"):
        validation_progress(archiver, DSP_UUID)


def test_files_not_ready_are_awaited() -> None:
    archiver = Archiver({"emptySubmission": False, "notReadyFileCount": 2})
    assert not validation_progress(archiver, DSP_UUID).done


def test_a_clean_submission_is_done() -> None:
    assert validation_progress(Archiver({"emptySubmission": False}), DSP_UUID).done
