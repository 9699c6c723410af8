"""How the LSF operator concludes from a job state, with a cluster stand-in (no SSH)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException

from hca_archive.lsf.names import job_paths
from hca_archive.lsf.outputs import JobState
from hca_archive.plan import parse_plan
from tests.lsf.conftest import operator, plan_job


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
    paths = job_paths("/scratch", "lsf_test", "zombie", 0)
    with pytest.raises(AirflowException, match="LSF job 7 is ZOMBI but left no result file"):
        op._conclude(ForgetfulCluster(), paths, jobs, "7", JobState("7", "ZOMBI", None))
