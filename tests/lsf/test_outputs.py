"""Parsing what bsub, bjobs and bkill print, errors included (lsf.md)."""

from __future__ import annotations

import pytest

from hca_archive.lsf.outputs import (
    JobState,
    LsfCommandError,
    describe_exit,
    parse_bjobs_json,
    parse_bkill,
    parse_bsub,
)


def test_bsub_submitted_to_named_or_default_queue():
    assert parse_bsub("Job <12345> is submitted to queue <normal>.\n", "", 0).job_id == "12345"
    submission = parse_bsub("Job <7> is submitted to default queue <long>.\n", "", 0)
    assert (submission.job_id, submission.queue) == ("7", "long")


def test_bsub_error_carries_lsf_message():
    with pytest.raises(LsfCommandError, match=r"exit 255\): normal: No such queue"):
        parse_bsub("", "normal: No such queue. Job not submitted.\n", 255)
    with pytest.raises(LsfCommandError, match="no output"):
        parse_bsub("", "", 0)


def test_bjobs_json_records_and_not_found_ids():
    stdout = (
        '{"COMMAND":"bjobs","JOBS":3,"RECORDS":[{"JOBID":"12345","STAT":"DONE","EXIT_CODE":""},'
        '{"JOBID":"12346","STAT":"EXIT","EXIT_CODE":"137","JOB_NAME":"hca_x_3"},'
        '{"ERROR":"Job <12347> is not found"}]}'
    )
    answer = parse_bjobs_json(stdout, "", 0)
    assert answer.by_id() == {
        "12345": JobState("12345", "DONE", None),
        "12346": JobState("12346", "EXIT", 137, "hca_x_3"),
    }
    assert answer.not_found == {"12347"}


@pytest.mark.parametrize("returncode", [0, 255])
def test_bjobs_not_found_on_stderr_with_either_exit_status(returncode):
    answer = parse_bjobs_json("", "Job <9> is not found\n", returncode)
    assert answer.jobs == ()
    assert answer.not_found == {"9"}
    record = '{"COMMAND":"bjobs","JOBS":1,"RECORDS":[{"ERROR":"Job <9> is not found"}]}'
    assert parse_bjobs_json(record, "", returncode).not_found == {"9"}


def test_bjobs_other_failures_raise():
    with pytest.raises(LsfCommandError, match="LSF is down"):
        parse_bjobs_json("", "LSF is down. Please wait ...\n", 255)
    with pytest.raises(LsfCommandError, match="no JSON"):
        parse_bjobs_json("JOBID STAT\n", "", 0)
    with pytest.raises(LsfCommandError, match="bjobs: Illegal"):
        parse_bjobs_json('{"RECORDS":[{"ERROR":"Illegal job ID"}]}', "", 0)


def test_no_job_found_is_not_an_error():
    assert parse_bjobs_json("", "No unfinished job found\n", 255).jobs == ()


@pytest.mark.parametrize(
    "stat", ["PEND", "PSUSP", "RUN", "USUSP", "SSUSP", "UNKWN", "WAIT", "ZOMBI"]
)
def test_unfinished_states_are_active(stat):
    assert JobState("1", stat, None).active
    assert not JobState("1", stat, None).finished


def test_finished_states():
    assert JobState("1", "DONE", None).finished
    assert not JobState("1", "EXIT", 1).active


def test_bkill_answers():
    outcome = parse_bkill(
        "Job <1> is being terminated\n",
        "Job <2>: Job has already finished\nJob <3>: No matching job found\nJob <4> is not found\n",
    )
    assert outcome == {"1": "terminating", "2": "finished", "3": "not found", "4": "not found"}


def test_exit_reasons():
    assert describe_exit("12345", 137) == (
        "LSF job 12345 EXIT code 137: killed by SIGKILL (TERM_MEMLIMIT? bkill?)"
    )
    assert "SIGINT" in describe_exit("1", 130)
    assert "job command failed" in describe_exit("1", 1)
    assert "not found (check the command prefix" in describe_exit("1", 127)
    assert "failed to start" in describe_exit("1", None)
