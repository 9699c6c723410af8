"""Valid plans: typed, normalised, round-tripping."""

from __future__ import annotations

import dataclasses

import pytest

from hca_archive.plan import Conversion, Plan, PlanFile, PlanJob, parse_plan, parse_s3_url
from tests.plan.builders import DSP, conversion_job, plain_job


def test_conversion_job_is_typed():
    [job] = parse_plan({"jobs": [conversion_job()]}).jobs

    assert isinstance(job, PlanJob)
    assert job.index == 0
    assert job.dsp_api_url == DSP
    assert job.submission_id == "b729f228-1"
    assert job.manifest_id == "1f2e3d4c"
    assert job.files == (PlanFile("1f2e3d4c_1.bam"),)
    assert isinstance(job.conversion, Conversion)
    assert job.conversion.schema == "10xV2"
    assert job.conversion.input_for("index1").cloud_url == "s3://bkt/1f2e3d4c/I1.fastq.gz"
    assert job.label == "1f2e3d4c/1f2e3d4c_1.bam"
    assert [name for name, _ in job.downloads] == ["R1.fastq.gz", "R2.fastq.gz", "I1.fastq.gz"]
    assert job.uploads == ("1f2e3d4c_1.bam",)


def test_plain_job_downloads_its_files():
    [job] = parse_plan([plain_job()]).jobs  # a bare list is a plan too

    assert job.conversion is None
    assert job.label == "9a8b7c6d/9a8b7c6d_R1.fastq.gz+9a8b7c6d_R2.fastq.gz"
    assert job.downloads == (
        ("9a8b7c6d_R1.fastq.gz", "s3://bkt/9a8b7c6d/R1.fq.gz"),
        ("9a8b7c6d_R2.fastq.gz", "s3://bkt/9a8b7c6d/R2.fq.gz"),
    )


@pytest.mark.parametrize(
    "url",
    [DSP, f"{DSP}/", f"{DSP}/api", f"{DSP}/api/", "HTTPS://Submission.EBI.ac.uk/api/"],
)
def test_dsp_api_url_is_normalised_to_the_bare_root(url):
    [job] = parse_plan([conversion_job(dsp_api_url=url)]).jobs
    assert job.dsp_api_url == DSP


def test_loopback_dsp_is_fine_for_the_sandbox():
    root = "http://127.0.0.1:8765"
    job = conversion_job(dsp_api_url=f"{root}/api/", submission_url=f"{root}/api/submissions/s1/")
    assert parse_plan([job]).jobs[0].submission_id == "s1"


def test_to_dict_round_trips_through_parse_plan():
    plan = parse_plan(
        {
            "jobs": [
                conversion_job(dcp_bundle_uuid="bundle-1", ingest_api_url="http://old/"),
                plain_job(),
            ]
        }
    )
    for job in plan.jobs:
        again = parse_plan({"jobs": [job.to_dict()]}).jobs[0]
        assert again == dataclasses.replace(job, index=0)
    assert parse_plan({"jobs": [job.to_dict() for job in plan.jobs]}) == plan
    assert "ingest_api_url" not in plan.jobs[0].to_dict()  # old and unused
    assert plan.jobs[0].dcp_bundle_uuid == "bundle-1"


def test_10xv3_without_index_and_index2_on_plain_files():
    job = conversion_job()
    job["conversion"]["schema"] = "10xV3"
    del job["conversion"]["inputs"][2]
    plain = plain_job()
    plain["files"].append(
        {"name": "I2.fastq.gz", "read_index": "index2", "cloud_url": "s3://bkt/I2"}
    )

    plan = parse_plan([job, plain])

    assert plan.jobs[0].conversion.input_for("index1") is None
    assert plan.jobs[1].files[2].read_index == "index2"


def test_plan_objects_are_frozen():
    plan = parse_plan([conversion_job()])
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.jobs[0].manifest_id = "other"
    assert isinstance(plan, Plan) and isinstance(plan.jobs, tuple)


def test_parse_s3_url():
    assert parse_s3_url("s3://my-bucket.x/a/b c/R1.fastq.gz") == (
        "my-bucket.x",
        "a/b c/R1.fastq.gz",
    )


@pytest.mark.timeout(120)
def test_a_plan_of_ten_thousand_jobs():
    jobs = [conversion_job(manifest=f"m{n:05d}") for n in range(10_000)]

    plan = parse_plan({"jobs": jobs})  # at the default limit

    assert len(plan.jobs) == 10_000
    assert plan.jobs[-1].index == 9_999
    assert plan.jobs[-1].label == "m09999/m09999_1.bam"
