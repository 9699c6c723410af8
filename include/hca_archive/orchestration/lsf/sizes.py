"""How much a plan job downloads, asked of S3 with the job's own credentials (for memory sizing)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from hca_archive.filejob.credentials import DEFAULT_AWS_REGION
from hca_archive.plan import PlanJob, parse_s3_url

log = logging.getLogger(__name__)
_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3})


def s3_input_bytes(job: PlanJob, credentials: Mapping[str, str]) -> int | None:
    """Sum of the sizes of the job's downloads (HEAD each), or None when any cannot be read."""
    if not job.downloads:
        return None
    client = boto3.client(
        "s3",
        region_name=credentials.get("AWS_DEFAULT_REGION") or DEFAULT_AWS_REGION,
        endpoint_url=credentials.get("AWS_ENDPOINT_URL") or None,
        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=credentials.get("AWS_SESSION_TOKEN") or None,
        config=_CONFIG,
    )
    total = 0
    for name, url in job.downloads:
        bucket, key = parse_s3_url(url)
        try:
            total += int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except (BotoCoreError, ClientError) as error:
            log.warning("cannot size input %r of %s: %s", name, job.label, error)
            return None
    return total
