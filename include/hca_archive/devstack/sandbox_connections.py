"""The Airflow connections of environment ``sandbox``, from the sandbox's endpoints.json."""

from __future__ import annotations

import json
from typing import Any

from hca_archive.orchestration.connections import conn_id


def sandbox_connections(endpoints: dict[str, Any], environment: str = "sandbox") -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for a local Airflow that archives against the sandbox."""
    connections = {
        "ingest": {"conn_type": "http", "host": endpoints["ingest_url"]},
        "archiver": {
            "conn_type": "http",
            "host": endpoints["archiver_url"],
            "password": endpoints["archiver_api_key"],
            # The sandbox builds its record, submits and writes back within seconds; ask again
            # (or call the write-back lost) sooner than in production.
            "extra": {"request_grace": 20, "complete_grace": 20, "writeback_grace": 60},
        },
        "dsp": {
            "conn_type": "http",
            "host": endpoints["dsp_url"],
            "login": endpoints["aap_username"],
            "password": endpoints["aap_password"],
            "extra": {"aap_url": endpoints["aap_url"]},
        },
        "aws": {
            "conn_type": "aws",
            "login": endpoints["aws_access_key_id"],
            "password": endpoints["aws_secret_access_key"],
            "extra": {"endpoint_url": endpoints["s3_endpoint_url"], "region_name": "us-east-1"},
        },
    }
    return {
        f"AIRFLOW_CONN_{conn_id(environment, service).upper()}": json.dumps(connection)
        for service, connection in connections.items()
    }
