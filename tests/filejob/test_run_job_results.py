"""run-job's result JSON in conditions that need no server: what stdout says when things break."""

from __future__ import annotations

import argparse
import errno
import json
from pathlib import Path

import pytest

from hca_archive.filejob import cli
from hca_archive.filejob.job import JobOutcome
from hca_archive.filejob.workdir import write_json_atomically
from tests.plan.builders import DSP, conversion_job

CREDENTIALS = {
    "HCA_AAP_URL": "http://127.0.0.1:9/auth",
    "HCA_AAP_USERNAME": "user",
    "HCA_AAP_PASSWORD": "pw-5678",
    "HCA_DSP_URL": DSP,
}


class Runner:
    """Stands in for JobRunner: every job succeeds at once and is remembered."""

    stopped: str | None = None

    def __init__(self) -> None:
        self.ran: list[int] = []

    def run(self, job, workdir: Path) -> JobOutcome:
        self.ran.append(job.index)
        return JobOutcome(job.index, job.manifest_id, job.label, status="succeeded")


def run_job(tmp_path: Path, monkeypatch, runner: Runner, jobs: list[dict]) -> int:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"jobs": jobs}))
    monkeypatch.setattr(cli, "_build_runner", lambda args, credentials: runner)
    args = argparse.Namespace(
        plan=plan,
        job=None,
        workdir=tmp_path / "work",
        credentials_file=None,
        delete_credentials_file=False,
        download_workers=1,
        threads=1,
        lock_dir=None,
    )
    return cli.run(args)


def test_a_result_file_that_cannot_be_written_hides_neither_the_other_jobs_nor_stdout(
    tmp_path, monkeypatch, capsys
):
    """A full disk (the downloads filled it) makes writing job 0's result file fail: job 1 must
    still run, and stdout must still carry the result of both."""

    def write(path: Path, document) -> None:
        if path.name == "result-0.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_json_atomically(path, document)

    monkeypatch.setattr(cli, "write_json_atomically", write)
    runner = Runner()
    jobs = [conversion_job("1f2e3d4c"), conversion_job("5a6b7c8d")]
    try:
        code = run_job(tmp_path, monkeypatch, runner, jobs)
    except OSError as error:
        pytest.fail(f"run-job crashed without a result on stdout: {error!r}")
    assert runner.ran == [0, 1]
    document = json.loads(capsys.readouterr().out)
    assert [job["index"] for job in document["jobs"]] == [0, 1]
    assert code == cli.EXIT_JOB_FAILED  # job 0's result could not be recorded


def test_a_work_directory_that_cannot_be_made_is_a_clear_refusal(tmp_path, monkeypatch, capsys):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setattr(cli, "_build_runner", lambda args, credentials: Runner())
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"jobs": [conversion_job()]}))
    args = argparse.Namespace(
        plan=plan,
        job=None,
        workdir=not_a_directory / "work",
        credentials_file=None,
        delete_credentials_file=False,
        download_workers=1,
        threads=1,
        lock_dir=None,
    )
    assert cli.run(args) == cli.EXIT_NOT_RUN  # was: NotADirectoryError with a traceback
    assert "cannot create work directory" in capsys.readouterr().err
