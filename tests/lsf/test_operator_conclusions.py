"""How the LSF operator concludes from a job state, with a cluster stand-in (no SSH)."""

from __future__ import annotations

import json
import time

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from hca_archive.lsf.names import job_paths
from hca_archive.lsf.outputs import JobState, LsfCommandError
from hca_archive.orchestration.lsf import operator as operator_module
from hca_archive.orchestration.lsf.cluster import CommandResult
from hca_archive.plan import parse_plan
from tests.lsf.conftest import context, operator, plan_job


class ForgetfulCluster:
    """A cluster whose job left nothing behind: no output, no result files."""

    def remove(self, path: str) -> None:
        pass

    def tail(self, path: str, size: int) -> str:
        return ""

    def read(self, path: str) -> None:
        return None


def test_a_zombie_job_without_result_is_named_as_such():
    op = operator(None, plan_job("manifest-zombie"))
    jobs = parse_plan({"jobs": [plan_job("manifest-zombie")]}).jobs
    paths = job_paths("/scratch", "lsf_test", "t", "zombie", 0)
    with pytest.raises(AirflowException, match="LSF job 7 is ZOMBI but left no result file"):
        op._conclude(ForgetfulCluster(), paths, jobs, "7", JobState("7", "ZOMBI", None))


def bjobs_answer(job_id: str, stat: str) -> str:
    record = {"JOBID": job_id, "STAT": stat, "EXIT_CODE": ""}
    return json.dumps({"COMMAND": "bjobs", "JOBS": 1, "RECORDS": [record]})


class HostLostCluster:
    """LSF has lost the job's host: bkill is accepted, the job stays in ``stat``."""

    def __init__(self, stat: str) -> None:
        self.extra: dict = {}
        self.stat = stat
        self.commands: list[list[str]] = []
        self.removed: list[str] = []

    def __enter__(self) -> HostLostCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(self, argv: list[str]) -> CommandResult:
        self.commands.append(argv)
        if argv[0] == "bkill":
            return CommandResult(0, f"Job <{argv[-1]}> is being terminated\n", "")
        return CommandResult(0, bjobs_answer("7", self.stat), "")

    def remove(self, path: str) -> None:
        self.removed.append(path)


@pytest.mark.parametrize("stat", ["ZOMBI", "UNKWN"])
def test_a_job_whose_host_is_lost_is_waited_for_not_taken_as_ended(monkeypatch, stat):
    """A ZOMBI job may still run on its host: a new job must not start in its directory."""
    monkeypatch.setattr(operator_module, "KILL_WAIT_SECONDS", 0.5)
    with pytest.raises(AirflowException, match=r"did not end 0\.5 s after bkill"):
        operator(None, plan_job("manifest-lost"))._end(HostLostCluster(stat), "7")
    assert operator_module._pick_existing((JobState("7", stat, None),)) == JobState("7", stat, None)


@pytest.mark.parametrize("stat", ["ZOMBI", "UNKWN"])
def test_a_job_that_outlives_the_wait_and_its_kill_fails_the_task_for_good(monkeypatch, stat):
    """Not a retry: it would adopt the same job and wait the whole time limit again."""
    monkeypatch.setattr(operator_module, "KILL_WAIT_SECONDS", 0.5)
    cluster = HostLostCluster(stat)
    monkeypatch.setattr(operator_module, "_connect", lambda conn_id: cluster)
    op = operator("hpc", plan_job("manifest-lost"))
    directory = job_paths("/scratch", "lsf_test", "t", "lost", 0).directory
    event = {"job_id": "7", "job_name": "n", "directory": directory, "outcome": "timeout"}
    with pytest.raises(AirflowFailException, match=f"still {stat} after .*but LSF job 7 did not"):
        op.execute_complete(context("lost"), event)
    assert cluster.removed == [f"{directory}/credentials.json"]


def test_the_newest_finished_job_is_adopted_whether_done_or_exit():
    """After a re-plan, the newer job ran the staged batch; the older DONE one ran another."""
    jobs = (JobState("100", "DONE", 0), JobState("101", "EXIT", 3))
    assert operator_module._pick_existing(jobs) == jobs[1]
    assert operator_module._pick_existing((*jobs, JobState("102", "PEND", None))).job_id == "102"


class LsfDownCluster(HostLostCluster):
    """The cluster answers, LSF does not: mbatchd is restarting or failing over."""

    def run(self, argv: list[str]) -> CommandResult:
        self.commands.append(argv)
        return CommandResult(255, "", "LSF is down. Please wait...\n")


def test_lsf_down_when_the_task_looks_for_itself_means_waiting_again(monkeypatch):
    """The poller gave up during an LSF outage and woke the task: its own bjobs fails the same
    way. Failing would spend the task's retries (2, a minute apart) on a routine mbatchd restart
    and leave the LSF job running with no task waiting for it; the job is still there."""
    cluster = LsfDownCluster("RUN")
    monkeypatch.setattr(operator_module, "_connect", lambda conn_id: cluster)
    op = operator("hpc", plan_job("manifest-down"))
    directory = job_paths("/scratch", "lsf_test", "t", "down", 0).directory
    deadline = time.time() + 3600
    event = {
        "job_id": "7",
        "job_name": "n",
        "directory": directory,
        "deadline": deadline,
        "outcome": "error",
        "message": "LSF poll failed 5 times: bjobs failed (exit 255): LSF is down. Please wait...",
    }
    with pytest.raises(TaskDeferred) as deferred:
        op.execute_complete(context("down"), event)
    assert (deferred.value.trigger.job_id, deferred.value.trigger.deadline) == ("7", deadline)
    assert [argv[0] for argv in cluster.commands] == ["bjobs"]  # no bkill, nothing resubmitted
    assert cluster.removed == []  # the job may still need its credentials

    past = {**event, "deadline": time.time() - 1, "outcome": "timeout"}
    with pytest.raises(LsfCommandError, match="LSF is down"):  # no waiting past the deadline
        op.execute_complete(context("down"), past)
