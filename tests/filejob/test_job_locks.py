"""Two runs' copies of one plan job take turns on run-job's lock directory; other jobs do not."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path

from hca_archive.filejob import cli
from hca_archive.filejob.cli import _after_other_runs
from hca_archive.filejob.job import JobOutcome
from hca_archive.filejob.workdir import write_json_atomically
from hca_archive.plan import parse_plan
from tests.plan.builders import conversion_job


def lane_jobs():
    """Two lanes of one manifest: same submission and manifest id, different BAMs."""
    lanes = [conversion_job(), conversion_job()]
    second_bam = f"{lanes[1]['manifest_id']}_2.bam"
    lanes[1]["conversion"]["output_name"] = lanes[1]["files"][0]["name"] = second_bam
    for lane in lanes[1]["conversion"]["inputs"]:
        lane["name"] = "L2_" + lane["name"]
    return parse_plan({"jobs": lanes}).jobs


def test_a_copy_of_a_job_waits_and_another_lane_of_its_manifest_does_not(tmp_path: Path):
    lane1, lane2 = lane_jobs()
    assert lane1.manifest_id == lane2.manifest_id
    locks = tmp_path / "job-locks"
    events: list[str] = []

    def second_copy_of_lane1() -> None:
        with _after_other_runs(lane1, locks, tmp_path / "run-2"):
            events.append("second copy of lane 1 ran")

    def run_lane2() -> None:
        with _after_other_runs(lane2, locks, tmp_path / "run-1"):
            events.append("lane 2 ran")

    with _after_other_runs(lane1, locks, tmp_path / "run-1"):
        waiter = threading.Thread(target=second_copy_of_lane1, daemon=True)
        waiter.start()
        other_lane = threading.Thread(target=run_lane2, daemon=True)
        other_lane.start()
        other_lane.join(5)
        assert not other_lane.is_alive(), "lane 2 waited for lane 1"
        waiter.join(0.5)
        events.append("first copy of lane 1 done")
    waiter.join(5)
    assert events == ["lane 2 ran", "first copy of lane 1 done", "second copy of lane 1 ran"]
    assert (locks.stat().st_mode & 0o777) == 0o700
    assert all((lock.stat().st_mode & 0o777) == 0o600 for lock in locks.iterdir())


def test_a_lock_directory_that_cannot_be_used_costs_the_lock_not_the_job(tmp_path: Path, caplog):
    (lane1, _lane2) = lane_jobs()
    not_a_directory = tmp_path / "job-locks"
    not_a_directory.write_text("")
    ran = []
    with _after_other_runs(lane1, not_a_directory, tmp_path / "run-1"):
        ran.append(True)
    assert ran
    assert "running without a lock" in caplog.text


def test_a_signal_while_the_result_is_written_still_leaves_the_result(tmp_path: Path, monkeypatch):
    """bkill's SIGTERM may arrive while a finished job's result file is being written."""
    (lane1, _lane2) = lane_jobs()

    class Runner:
        stopped: str | None = None

        def run(self, job, workdir: Path) -> JobOutcome:
            return JobOutcome(job.index, job.manifest_id, job.label, status="succeeded")

    writes: list[Path] = []

    def write_with_a_signal(path: Path, document) -> None:
        writes.append(path)
        if len(writes) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # handled here: the write is broken off
        write_json_atomically(path, document)

    monkeypatch.setattr(cli, "write_json_atomically", write_with_a_signal)
    runner = Runner()
    with cli._stop_on_signals():
        outcome = cli._run_one(runner, lane1, tmp_path, None)  # type: ignore[arg-type]
    result = json.loads((tmp_path / f"result-{lane1.index}.json").read_text())
    assert result["jobs"][0]["status"] == outcome.status == "succeeded"
    assert runner.stopped == "stopped by SIGTERM"  # no further job starts


def test_a_signal_as_a_jobs_lock_is_taken_still_leaves_every_outcome(
    tmp_path: Path, monkeypatch
) -> None:
    """The signal comes before the job's lock is ours: that job is reported not started (its
    result file may belong to another process, so none is written) and so is the next one."""
    lane1, lane2 = lane_jobs()
    locking = cli.exclusive

    def exclusive_with_a_signal(path: Path, *args, **kwargs):
        if path.name == f"job-{lane1.index}.lock":
            os.kill(os.getpid(), signal.SIGINT)
        return locking(path, *args, **kwargs)

    monkeypatch.setattr(cli, "exclusive", exclusive_with_a_signal)

    class Runner:
        stopped: str | None = None

        def run(self, job, workdir: Path) -> JobOutcome:
            raise AssertionError("no job starts after the signal")

    with cli._stop_on_signals():
        outcomes = cli._run_all(Runner(), [lane1, lane2], tmp_path, None)  # type: ignore[arg-type]
    assert [o.error for o in outcomes] == [
        f"job {job.index} ({job.label}): not started: stopped by SIGINT" for job in (lane1, lane2)
    ]
    assert not (tmp_path / f"result-{lane1.index}.json").exists()
    second = json.loads((tmp_path / f"result-{lane2.index}.json").read_text())
    assert second["jobs"][0]["error"] == outcomes[1].error


def test_a_signal_as_a_finished_jobs_lock_is_released_keeps_its_outcome(
    tmp_path: Path, monkeypatch
) -> None:
    """The job ran and wrote its result: stdout must say what the result file says."""
    (lane1, _lane2) = lane_jobs()
    locking = cli.exclusive

    @contextlib.contextmanager
    def exclusive_signalled_on_release(path: Path, *args, **kwargs):
        with locking(path, *args, **kwargs) as held:
            yield held
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli, "exclusive", exclusive_signalled_on_release)

    class Runner:
        stopped: str | None = None

        def run(self, job, workdir: Path) -> JobOutcome:
            return JobOutcome(job.index, job.manifest_id, job.label, status="succeeded")

    runner = Runner()
    with cli._stop_on_signals():
        (outcome,) = cli._run_all(runner, [lane1], tmp_path, None)  # type: ignore[arg-type]
    result = json.loads((tmp_path / f"result-{lane1.index}.json").read_text())
    assert outcome.status == result["jobs"][0]["status"] == "succeeded"
    assert runner.stopped == "stopped by SIGTERM"
