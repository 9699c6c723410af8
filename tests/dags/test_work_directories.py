"""Each file-job task instance of the local runner gets a work directory of its own."""

from __future__ import annotations

from types import SimpleNamespace

from hca_archive.orchestration.file_job_results import work_key


def key(run_id: str, map_index: int = 0) -> str:
    ti = SimpleNamespace(dag_id="archive_submission", run_id=run_id, map_index=map_index)
    return work_key({"ti": ti})


def test_run_ids_that_differ_only_in_replaced_characters_get_their_own_directories() -> None:
    first, second = (
        key("manual__2026-11-30T03:00:00+00:00"),
        key("manual__2026-11-30T03_00_00_00_00"),
    )
    assert first != second
    assert first.startswith("archive_submission_manual__2026-11-30T03_00_00_00_00_0-")


def test_the_key_is_one_safe_name_and_stable() -> None:
    name = key("../../etc/x y", 3)
    assert name == key("../../etc/x y", 3) != key("../../etc/x y", 4)
    assert "/" not in name and not name.startswith(".")
