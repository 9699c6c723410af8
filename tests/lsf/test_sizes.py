"""Input sizes for memory sizing come from S3 HEAD requests (moto in-process)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from hca_archive.orchestration.lsf.operator import _largest_input
from hca_archive.orchestration.lsf.sizes import s3_input_bytes
from hca_archive.plan import parse_plan
from tests.lsf.conftest import plan_job

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture
def bucket(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="b-1")
        yield s3


def test_sizes_add_up_the_job_inputs(bucket):
    bucket.put_object(Bucket="b-1", Key="R1", Body=b"x" * 1000)
    bucket.put_object(Bucket="b-1", Key="R2", Body=b"y" * 234)
    job = parse_plan({"jobs": [plan_job("sized")]}).jobs[0]
    assert s3_input_bytes(job, CREDENTIALS) == 1234


def test_a_missing_input_leaves_the_size_unknown(bucket):
    bucket.put_object(Bucket="b-1", Key="R1", Body=b"x")
    job = parse_plan({"jobs": [plan_job("half")]}).jobs[0]
    assert s3_input_bytes(job, CREDENTIALS) is None


def test_a_job_of_unknown_size_does_not_hide_the_largest_known_one(bucket):
    """Memory for a batch follows its largest job: one that S3 cannot size must not drop the
    batch to the memory floor."""
    bucket.put_object(Bucket="b-1", Key="R1", Body=b"x" * 1000)
    bucket.put_object(Bucket="b-1", Key="R2", Body=b"y" * 234)
    unsized = plan_job("unsized")
    unsized["conversion"]["inputs"][1]["cloud_url"] = "s3://b-1/absent"
    jobs = parse_plan({"jobs": [unsized, plan_job("sized")]}).jobs
    assert _largest_input(jobs, CREDENTIALS) == 1234
    assert _largest_input(jobs[:1], CREDENTIALS) is None
