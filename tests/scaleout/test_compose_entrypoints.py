"""The compose services' entrypoints: with_sandbox's connections and the hpc login node."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from hca_archive.devstack.with_sandbox import connection_environment
from hca_archive.sandbox.hpc.serve import prepare

ENDPOINTS = {
    "archiver_url": "http://127.0.0.1:1001",
    "ingest_url": "http://127.0.0.1:1002",
    "dsp_url": "http://127.0.0.1:1003",
    "aap_url": "http://127.0.0.1:1004",
    "s3_endpoint_url": "http://127.0.0.1:1005",
    "archiver_api_key": "key",
    "aap_username": "user",
    "aap_password": "password",
    "aws_access_key_id": "id",
    "aws_secret_access_key": "secret",
}


def test_the_sandbox_and_hpc_connections_are_exported(tmp_path: Path) -> None:
    endpoints, ssh = tmp_path / "endpoints.json", tmp_path / "ssh-connection.json"
    endpoints.write_text(json.dumps(ENDPOINTS))
    ssh.write_text(json.dumps({"conn_type": "ssh", "host": "127.0.0.1", "port": 2222}))
    env = connection_environment(endpoints, ssh, timeout=1)
    assert set(env) == {
        f"AIRFLOW_CONN_HCA_SANDBOX_{service}"
        for service in ("INGEST", "ARCHIVER", "DSP", "AWS", "SSH")
    }
    assert json.loads(env["AIRFLOW_CONN_HCA_SANDBOX_SSH"])["port"] == 2222
    assert json.loads(env["AIRFLOW_CONN_HCA_SANDBOX_DSP"])["host"] == ENDPOINTS["dsp_url"]


def test_a_missing_endpoints_file_is_named_after_the_timeout(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"endpoints\.json did not appear"):
        connection_environment(tmp_path / "endpoints.json", None, timeout=0)


def test_the_hpc_node_gets_keys_wrappers_and_a_pinned_connection(tmp_path: Path) -> None:
    config = prepare(tmp_path, 2222, "someone")
    connection = json.loads((tmp_path / "ssh-connection.json").read_text())
    assert (connection["host"], connection["port"], connection["login"]) == (
        "127.0.0.1",
        2222,
        "someone",
    )
    host_key = (tmp_path / "host_key.pub").read_text().split()[:2]
    assert connection["extra"]["host_key"] == " ".join(host_key)
    assert stat.S_IMODE((tmp_path / "client_key").stat().st_mode) == 0o600
    for command in ("bsub", "bjobs", "bkill"):
        assert os.access(tmp_path / "bin" / command, os.X_OK)
    checked = subprocess.run(
        ["/usr/sbin/sshd", "-t", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    # A restart keeps the keys, so the pinned host key stays valid.
    prepare(tmp_path, 2222, "someone")
    assert json.loads((tmp_path / "ssh-connection.json").read_text()) == connection
