"""Fixtures shared by the orchestration tests: AWS Secrets Manager as a moto server on loopback."""

from __future__ import annotations

import pytest

from tests.fixtures.moto import moto_client


@pytest.fixture
def secrets_manager(moto_endpoint):
    client = moto_client(moto_endpoint, "secretsmanager")
    created: list[str] = []

    def put(name: str, value: str) -> None:
        client.create_secret(Name=name, SecretString=value)
        created.append(name)

    yield put
    for name in created:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
