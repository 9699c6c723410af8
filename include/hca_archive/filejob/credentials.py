"""Secrets for one file job: AAP login and AWS keys, and the one DSP the AAP token may go to.

They come from the environment or from a JSON file only the owner can read (LSF stages one per
job), never from the command line, which every user of a cluster can see.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Field -> environment variable; the credentials file uses the same names as keys.
ENVIRONMENT_NAMES: dict[str, str] = {
    "aap_url": "HCA_AAP_URL",
    "aap_username": "HCA_AAP_USERNAME",
    "aap_password": "HCA_AAP_PASSWORD",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "s3_endpoint_url": "AWS_ENDPOINT_URL",
    "aws_region": "AWS_DEFAULT_REGION",
    "dsp_url": "HCA_DSP_URL",
}
REQUIRED = ("aap_url", "aap_username", "aap_password")
DEFAULT_AWS_REGION = "us-east-1"  # when neither the AWS connection nor the environment names one


class CredentialsError(Exception):
    """The credentials are missing, malformed or not safely stored. Never carries a secret."""


@dataclass(frozen=True)
class Credentials:
    aap_url: str
    aap_username: str
    aap_password: str = field(repr=False)
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    s3_endpoint_url: str | None = None
    aws_region: str | None = None
    # The environment's DSP: with it, a job naming another DSP is refused (the plan comes from
    # a service, and the job would send that host its AAP token).
    dsp_url: str | None = None

    def secrets(self) -> list[str]:
        """The values that must never appear in output."""
        values = [self.aap_password, self.aws_secret_access_key, self.aws_session_token]
        return [value for value in values if value]


def load_credentials(
    environ: Mapping[str, str], path: Path | None = None, *, delete: bool = False
) -> Credentials:
    """Credentials from ``path`` (when given) with the environment filling what it leaves out.

    The file must be a regular file, owned by this user, with no group or other permissions.
    With ``delete`` it is removed as soon as it has been opened, even when it is then refused.
    """
    values = {name: environ.get(variable) or None for name, variable in ENVIRONMENT_NAMES.items()}
    if path is not None:
        values.update(_read_credentials_file(path, delete=delete))
    missing = [ENVIRONMENT_NAMES[name] for name in REQUIRED if not values[name]]
    if missing:
        raise CredentialsError(f"missing credentials: {', '.join(missing)}")
    return Credentials(**values)


def _read_credentials_file(path: Path, *, delete: bool) -> dict[str, str]:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise CredentialsError(f"cannot open credentials file {path}: {error.strerror}") from None
    try:
        _check_private(path, os.fstat(descriptor))
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = -1
            raw = handle.read()
    finally:
        if descriptor >= 0:
            os.close(descriptor)
        if delete:
            path.unlink(missing_ok=True)
    return _parse_credentials(path, raw)


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise CredentialsError(f"credentials file {path} is not a regular file")
    if info.st_uid != os.getuid():
        raise CredentialsError(f"credentials file {path} is not owned by this user")
    if info.st_mode & 0o077:
        raise CredentialsError(
            f"credentials file {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
            "refusing it: make it readable by its owner only (chmod 600)"
        )


def _parse_credentials(path: Path, raw: bytes) -> dict[str, str]:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CredentialsError(f"credentials file {path} is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"credentials file {path} must hold a JSON object")
    by_variable = {variable: name for name, variable in ENVIRONMENT_NAMES.items()}
    unknown = sorted(str(key) for key in document if key not in by_variable)
    if unknown:
        raise CredentialsError(
            f"credentials file {path}: unknown keys {', '.join(unknown)} "
            f"(expected some of {', '.join(ENVIRONMENT_NAMES.values())})"
        )
    not_text = sorted(key for key, value in document.items() if not isinstance(value, str))
    if not_text:
        raise CredentialsError(f"credentials file {path}: {', '.join(not_text)} must be strings")
    return {by_variable[key]: value for key, value in document.items() if value}
