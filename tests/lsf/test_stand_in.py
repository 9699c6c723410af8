"""The LSF stand-in over real SSH answers like LSF 10.1 (lsf.md) and really runs jobs."""

from __future__ import annotations

import json
import time

import pytest

from hca_archive.lsf.commands import STATUS_FIELDS
from hca_archive.lsf.outputs import JobState, parse_bjobs_json
from tests.lsf.conftest import state, submit, wait_for

pytestmark = pytest.mark.integration


def test_a_job_pends_runs_and_is_done_with_its_output_file(hpc, tmp_path):
    out, release = tmp_path / "job.out", tmp_path / "release"
    # the job ends when the test says so: a fixed sleep ended before a slow machine looked
    wait = f"until [ -e {release} ]; do sleep 0.1; done"
    job_id = submit(hpc, "-J", "stand-in-done", "-o", str(out), "echo", "hello", "&&", wait)
    assert state(hpc, job_id).stat in ("PEND", "RUN")
    release.touch()
    done = wait_for(hpc, job_id, {"DONE", "EXIT"})
    assert done == JobState(job_id, "DONE", None, "stand-in-done")
    assert out.read_text().startswith("hello\n")
    assert "Successfully completed." in out.read_text()
    line = hpc.run(["bjobs", "-noheader", "-o", STATUS_FIELDS, job_id]).stdout
    assert line == f"{job_id} DONE - stand-in-done\n"


def test_bsub_answers_with_the_queue(hpc):
    default = hpc.run(["bsub", "true"])
    assert default.stdout.endswith("is submitted to default queue <normal>.\n")
    named = hpc.run(["bsub", "-q", "long", "true"])
    assert named.stdout.endswith("is submitted to queue <long>.\n")


def test_a_failing_job_is_exit_with_its_code(hpc):
    job_id = submit(hpc, "-J", "stand-in-exit", "exit", "3")
    assert wait_for(hpc, job_id, {"DONE", "EXIT"}) == JobState(job_id, "EXIT", 3, "stand-in-exit")
    result = hpc.run(["bjobs", "-o", "jobid stat exit_code", "-json", job_id])
    assert json.loads(result.stdout) == {
        "COMMAND": "bjobs",
        "JOBS": 1,
        "RECORDS": [{"JOBID": job_id, "STAT": "EXIT", "EXIT_CODE": "3"}],
    }


def test_unknown_queue_is_refused(hpc):
    result = hpc.run(["bsub", "-q", "nosuch", "true"])
    assert result.returncode != 0
    assert result.stderr == "nosuch: No such queue. Job not submitted.\n"
    assert result.stdout == ""


def test_bkill_interrupts_a_running_job(hpc):
    job_id = submit(hpc, "-J", "stand-in-kill", "sleep", "60")
    wait_for(hpc, job_id, {"RUN"})
    killed = hpc.run(["bkill", job_id])
    assert killed.stdout == f"Job <{job_id}> is being terminated\n"
    assert wait_for(hpc, job_id, {"DONE", "EXIT"}) == JobState(job_id, "EXIT", 130, "stand-in-kill")
    again = hpc.run(["bkill", job_id])
    assert again.stderr == f"Job <{job_id}>: Job has already finished\n"
    assert again.returncode != 0


def test_bkill_kills_a_job_that_ignores_sigint(hpc):
    job_id = submit(hpc, "trap", "''", "INT;", "sleep", "60")
    wait_for(hpc, job_id, {"RUN"})
    hpc.run(["bkill", job_id])
    assert wait_for(hpc, job_id, {"DONE", "EXIT"}).exit_code == 137


def test_bkill_of_a_pending_job(hpc):
    hpc.configure_lsf(pend_seconds=30)
    try:
        job_id = submit(hpc, "true")
        assert hpc.run(["bkill", job_id]).stdout == f"Job <{job_id}> is being terminated\n"
    finally:
        hpc.reset_lsf()
    assert wait_for(hpc, job_id, {"DONE", "EXIT"}).exit_code == 130


def test_unknown_job_is_not_found_with_either_exit_convention(hpc):
    plain = hpc.run(["bjobs", "99999"])
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, "", "Job <99999> is not found\n")
    consistent = hpc.run(["env", "LSB_BJOBS_CONSISTENT_EXIT_CODE=Y", "bjobs", "99999"])
    assert (consistent.returncode, consistent.stderr) == (255, "Job <99999> is not found\n")
    as_json = hpc.run(["bjobs", "-o", "jobid stat", "-json", "99999"])
    assert json.loads(as_json.stdout)["RECORDS"] == [{"ERROR": "Job <99999> is not found"}]
    assert parse_bjobs_json(as_json.stdout, as_json.stderr, as_json.returncode).not_found == {
        "99999"
    }
    bkill = hpc.run(["bkill", "99999"])
    assert bkill.stderr == "Job <99999>: No matching job found\n"


def test_name_wildcards_and_finished_jobs_only_with_all(hpc):
    ids = {submit(hpc, "-J", name, "true") for name in ("wild-a-1", "wild-a-2", "wild-b-1")}
    for job_id in ids:
        wait_for(hpc, job_id, {"DONE"})
    result = hpc.run(["bjobs", "-a", "-J", "wild-a*", "-o", STATUS_FIELDS, "-json"])
    names = {job.name for job in parse_bjobs_json(result.stdout, result.stderr, 0).jobs}
    assert names == {"wild-a-1", "wild-a-2"}
    unfinished = hpc.run(["bjobs", "-J", "wild-a*"])
    assert unfinished.stderr == "Job <wild-a*> is not found\n"


def test_finished_jobs_disappear_after_the_clean_period(hpc):
    job_id = submit(hpc, "true")
    wait_for(hpc, job_id, {"DONE"})
    time.sleep(0.1)
    gone = hpc.run(["env", "HCA_LSF_CLEAN_PERIOD=0.05", "bjobs", job_id])
    assert gone.stderr == f"Job <{job_id}> is not found\n"
    assert state(hpc, job_id).stat == "DONE"  # still within the default hour


def test_bjobs_long_shows_the_command(hpc):
    job_id = submit(hpc, "-J", "stand-in-long", "echo", "visible-to-all")
    result = hpc.run(["bjobs", "-l", job_id])
    assert f"Job <{job_id}>, Job Name <stand-in-long>" in result.stdout
    assert "Command <echo visible-to-all>" in result.stdout


def test_every_command_line_is_recorded(hpc):
    hpc.run(["bjobs", "-a", "-J", "recorded-marker"])
    assert hpc.command_record()[-1]["argv"] == ["bjobs", "-a", "-J", "recorded-marker"]
