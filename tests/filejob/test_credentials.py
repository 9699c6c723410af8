"""Credentials from the environment or an owner-only JSON file; secrets never in messages."""

from __future__ import annotations

import json

import pytest

from hca_archive.filejob.credentials import CredentialsError, load_credentials

ENV = {
    "HCA_AAP_URL": "http://127.0.0.1:1/auth",
    "HCA_AAP_USERNAME": "archiver",
    "HCA_AAP_PASSWORD": "pw-from-env-123",
}


def write_file(path, document, mode=0o600):
    path.write_text(json.dumps(document))
    path.chmod(mode)
    return path


def test_environment_only():
    credentials = load_credentials(
        {**ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:2", "HCA_DSP_URL": "https://dsp.example"}
    )
    assert credentials.aap_username == "archiver"
    assert credentials.s3_endpoint_url == "http://127.0.0.1:2"
    assert credentials.dsp_url == "https://dsp.example"
    assert credentials.aws_access_key_id is None
    assert "pw-from-env-123" not in repr(credentials)


def test_missing_values_are_named():
    with pytest.raises(CredentialsError, match="missing credentials: HCA_AAP_PASSWORD"):
        load_credentials({"HCA_AAP_URL": "u", "HCA_AAP_USERNAME": "n"})


def test_a_private_file_wins_over_the_environment_and_can_be_deleted(tmp_path):
    path = write_file(
        tmp_path / "creds.json",
        {
            "HCA_AAP_PASSWORD": "pw-from-file-456",
            "AWS_SECRET_ACCESS_KEY": "aws-secret-789",
            "AWS_SESSION_TOKEN": "aws-session-012",
        },
    )
    credentials = load_credentials(ENV, path, delete=True)
    assert credentials.aap_password == "pw-from-file-456"
    assert credentials.aap_url == ENV["HCA_AAP_URL"]
    secrets = {"pw-from-file-456", "aws-secret-789", "aws-session-012"}
    assert set(credentials.secrets()) == secrets  # what output is redacted of
    assert not [secret for secret in secrets if secret in repr(credentials)]
    assert not path.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused(tmp_path, mode):
    path = write_file(tmp_path / "creds.json", {"HCA_AAP_PASSWORD": "pw-from-file-456"}, mode)
    with pytest.raises(CredentialsError, match="chmod 600") as refused:
        load_credentials(ENV, path)
    assert "pw-from-file-456" not in str(refused.value)
    assert path.exists()


def test_a_file_of_another_user_is_refused(tmp_path, monkeypatch):
    """Whoever owns the file could have written it: its AAP URL and DSP get the password."""
    path = write_file(tmp_path / "creds.json", {"HCA_AAP_PASSWORD": "pw-from-file-456"})
    owner = path.stat().st_uid
    monkeypatch.setattr("os.getuid", lambda: owner + 1)
    with pytest.raises(CredentialsError, match="is not owned by this user"):
        load_credentials(ENV, path)


def test_a_directory_is_refused(tmp_path):
    path = tmp_path / "creds"
    path.mkdir(mode=0o700)
    with pytest.raises(CredentialsError, match="is not a regular file"):
        load_credentials(ENV, path)


def test_a_symlink_is_refused(tmp_path):
    target = write_file(tmp_path / "real.json", {"HCA_AAP_PASSWORD": "x"})
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with pytest.raises(CredentialsError, match="cannot open credentials file"):
        load_credentials(ENV, link)


def test_unknown_keys_and_bad_json_are_named_without_values(tmp_path):
    path = write_file(tmp_path / "creds.json", {"HCA_AAP_PASWORD": "typo-secret-000"})
    with pytest.raises(CredentialsError, match="unknown keys HCA_AAP_PASWORD") as refused:
        load_credentials(ENV, path)
    assert "typo-secret-000" not in str(refused.value)
    path.write_text("{not json")
    with pytest.raises(CredentialsError, match="is not valid JSON"):
        load_credentials(ENV, path)
