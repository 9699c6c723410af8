"""The S3 stand-in: moto's server on loopback, with the seeded bucket restored after a restart.

Moto keeps objects in memory only, so every seeded object's local file is recorded in the store
and uploaded again when the sandbox starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from hca_archive.sandbox.context import Context

log = logging.getLogger(__name__)

REGION = "us-east-1"


def start_moto(port: int) -> tuple[ThreadedMotoServer, str]:
    """Start moto on ``port`` (which must be free; 0 picks one) and return it with its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def s3_client(ctx: Context, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=ctx.urls.s3,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def restore_bucket(ctx: Context, client: Any) -> None:
    """Create the bucket and upload every recorded object that moto does not hold."""
    try:
        client.create_bucket(Bucket=ctx.bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise
    for row in ctx.store.all("SELECT key, path FROM s3_objects ORDER BY key"):
        path = Path(row["path"])
        if not path.exists():
            log.error(
                "seeded object s3://%s/%s: local copy %s is gone", ctx.bucket, row["key"], path
            )
            continue
        client.upload_file(str(path), ctx.bucket, row["key"])


def put_object(ctx: Context, client: Any, key: str, path: Path) -> str:
    """Upload a seeded file and remember it for restarts; returns its ``s3://`` URL."""
    client.upload_file(str(path), ctx.bucket, key)
    with ctx.store.tx() as db:
        db.execute("INSERT OR REPLACE INTO s3_objects (key, path) VALUES (?, ?)", (key, str(path)))
    return f"s3://{ctx.bucket}/{key}"
