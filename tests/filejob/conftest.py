"""Fixtures of the file job tests: an in-process moto S3 server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

BUCKET = "hca-test-area"


@dataclass(frozen=True)
class MotoS3:
    endpoint_url: str
    bucket: str

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test-key-id",
            aws_secret_access_key="test-secret-key",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, **config),
        )


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = MotoS3(f"http://{host}:{port}", BUCKET)
    s3.client().create_bucket(Bucket=BUCKET)
    yield s3
    server.stop()
