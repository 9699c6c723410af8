"""What the Airflow side hands a file job besides secrets: its DSP and its AWS region."""

from __future__ import annotations

import json

import pytest

from hca_archive.orchestration.hooks import HcaArchiveHook


@pytest.fixture
def dev_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    dsp = {
        "conn_type": "http",
        "host": "https://submission.example.org/api/",
        "login": "archiver",
        "password": "aap-secret",
        "extra": {"aap_url": "https://aap.example.org/auth"},
    }
    aws = {
        "conn_type": "aws",
        "login": "AKIAFAKEKEY",
        "password": "aws-secret",
        "extra": {"region_name": "eu-west-2"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_DSP", json.dumps(dsp))
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_AWS", json.dumps(aws))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")


def test_a_file_job_gets_the_environments_dsp_and_the_connections_region(dev_connections):
    settings = HcaArchiveHook("dev").file_job_credentials()
    assert settings["HCA_DSP_URL"] == "https://submission.example.org/api"
    assert settings["AWS_DEFAULT_REGION"] == "eu-west-2"  # the connection's, not the worker's


def test_without_a_region_in_the_connection_the_workers_goes_along(dev_connections, monkeypatch):
    aws = {"conn_type": "aws", "login": "AKIAFAKEKEY", "password": "aws-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_AWS", json.dumps(aws))
    assert HcaArchiveHook("dev").file_job_credentials()["AWS_DEFAULT_REGION"] == "ap-south-1"
