"""Two runs' copies of one file job on one machine run one after the other."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from hca_archive.orchestration.runners.local import one_copy_at_a_time

LOG = logging.getLogger(__name__)


def job(manifest_id: str) -> dict[str, str]:
    return {"submission_url": "http://dsp/api/submissions/s1", "manifest_id": manifest_id}


def test_a_second_copy_waits_for_the_first_and_other_jobs_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCA_ARCHIVE_WORKDIR", str(tmp_path))
    events: list[str] = []

    def second_copy() -> None:
        with one_copy_at_a_time([job("m1")], LOG):
            events.append("second copy ran")

    with one_copy_at_a_time([job("m1"), job("m2")], LOG):
        waiter = threading.Thread(target=second_copy)
        waiter.start()
        with one_copy_at_a_time([job("m3")], LOG):
            events.append("other job ran")
        time.sleep(0.5)
        events.append("first copy done")
    waiter.join(5)
    assert events == ["other job ran", "first copy done", "second copy ran"]
