"""Fixtures shared by the orchestration tests: AWS Secrets Manager as a moto server on loopback."""

from __future__ import annotations

import boto3
import pytest


@pytest.fixture
def secrets_manager(moto_endpoint):
    client = boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-id",
        aws_secret_access_key="test-secret",
    )
    created: list[str] = []

    def put(name: str, value: str) -> None:
        client.create_secret(Name=name, SecretString=value)
        created.append(name)

    yield put
    for name in created:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
