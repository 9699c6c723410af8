"""Input sizes for memory sizing come from S3 HEAD requests, to a moto server over HTTP.

The server is reached only through the credentials' ``AWS_ENDPOINT_URL``, as the sandbox's S3 is:
moto's in-process ``mock_aws`` answers wherever boto3 sends, so an endpoint that is ignored
went unnoticed (the sizes then came from real AWS, or from nowhere: the memory floor).
"""

from __future__ import annotations

import pytest

from hca_archive.orchestration.lsf.operator import _largest_input
from hca_archive.orchestration.lsf.sizes import s3_input_bytes
from hca_archive.plan import parse_plan
from tests.fixtures.moto import moto_client
from tests.lsf.conftest import plan_job

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    # Nothing but the credentials may lead boto3 to the server.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    s3 = moto_client(moto_endpoint, "s3")
    s3.create_bucket(Bucket="b-1")
    yield s3
    for listed in s3.list_objects_v2(Bucket="b-1").get("Contents", []):
        s3.delete_object(Bucket="b-1", Key=listed["Key"])
    s3.delete_bucket(Bucket="b-1")


@pytest.fixture
def credentials(moto_endpoint: str) -> dict[str, str]:
    """What the operator hands a job: the keys and the endpoint of the environment's S3."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }


def test_sizes_add_up_the_job_inputs(bucket, credentials):
    bucket.put_object(Bucket="b-1", Key="R1", Body=b"x" * 1000)
    bucket.put_object(Bucket="b-1", Key="R2", Body=b"y" * 234)
    job = parse_plan({"jobs": [plan_job("sized")]}).jobs[0]
    assert s3_input_bytes(job, credentials) == 1234


def test_a_missing_input_leaves_the_size_unknown(bucket, credentials):
    bucket.put_object(Bucket="b-1", Key="R1", Body=b"x")
    job = parse_plan({"jobs": [plan_job("half")]}).jobs[0]
    assert s3_input_bytes(job, credentials) is None


def test_a_job_of_unknown_size_does_not_hide_the_largest_known_one(bucket, credentials):
    """Memory for a batch follows its largest job: one that S3 cannot size must not drop the
    batch to the memory floor."""
    bucket.put_object(Bucket="b-1", Key="R1", Body=b"x" * 1000)
    bucket.put_object(Bucket="b-1", Key="R2", Body=b"y" * 234)
    unsized = plan_job("unsized")
    unsized["conversion"]["inputs"][1]["cloud_url"] = "s3://b-1/absent"
    jobs = parse_plan({"jobs": [unsized, plan_job("sized")]}).jobs
    assert _largest_input(jobs, credentials) == 1234
    assert _largest_input(jobs[:1], credentials) is None
