"""The plan step validates against the environment's DSP and batches long plans."""

from __future__ import annotations

import pytest

from hca_archive.archiving import RunStopped, fetch_plan
from tests.plan.builders import DSP, conversion_job


class PlanArchiver:
    def __init__(self, jobs: list[dict]) -> None:
        self.jobs = jobs

    def file_upload_plan(self, dsp_uuid: str) -> dict:
        return {"jobs": self.jobs}


def test_a_plan_for_another_dsp_host_is_refused() -> None:
    job = conversion_job()
    job["dsp_api_url"] = "https://attacker.example.org"
    job["submission_url"] = "https://attacker.example.org/api/submissions/b729f228-1"
    with pytest.raises(RunStopped, match=r"job 0 \(manifest 1f2e3d4c\): dsp_api_url"):
        fetch_plan(PlanArchiver([job]), "b729f228-1", 1024, dsp_url=DSP)


def test_a_plan_sending_files_to_another_submission_is_refused() -> None:
    """Same DSP host, someone else's submission: our AAP login would upload into it."""
    jobs = [conversion_job(), conversion_job(manifest="5e6f7a8b", submission="0c1d2e3f-9")]
    with pytest.raises(RunStopped) as stopped:
        fetch_plan(PlanArchiver(jobs), "b729f228-1", 1024, dsp_url=DSP)
    assert str(stopped.value) == (
        "upload plan of DSP submission b729f228-1 sends files to another submission "
        f"({DSP}/api/submissions/0c1d2e3f-9): job 1 (5e6f7a8b/5e6f7a8b_1.bam)"
    )


def test_a_plan_longer_than_the_map_limit_is_batched_in_order() -> None:
    jobs = [conversion_job(manifest=f"m{number:05d}") for number in range(2500)]
    plan = fetch_plan(PlanArchiver(jobs), "b729f228-1", 1024, dsp_url=DSP)
    assert len(plan.batches) <= 1024
    assert plan.job_count == 2500
    flattened = [job["manifest_id"] for batch in plan.batches for job in batch]
    assert flattened == [job["manifest_id"] for job in jobs]
