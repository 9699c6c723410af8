"""One hook per environment: the clients of its services and the credentials a file job needs."""

from __future__ import annotations

import functools
import json
import os
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from hca_archive.clients.aap import AapTokenSource
from hca_archive.clients.archiver import ArchiverClient
from hca_archive.clients.dsp import DspClient
from hca_archive.clients.ingest import IngestClient
from hca_archive.filejob.credentials import ENVIRONMENT_NAMES
from hca_archive.orchestration.connections import conn_id, service_url
from hca_archive.orchestration.env_durations import ONE_YEAR

ARCHIVER_KEY_FIELD = "archiver_api_key"
DEFAULT_REQUEST_GRACE_SECONDS = 30 * 60
DEFAULT_COMPLETE_GRACE_SECONDS = 10 * 60
DEFAULT_WRITEBACK_GRACE_SECONDS = 60 * 60


class HcaArchiveHook(BaseHook):
    """Clients for one environment, built from its Airflow connections."""

    def __init__(self, environment: str) -> None:
        super().__init__()
        self.environment = environment

    def _connection(self, service: str) -> Any:
        return self.get_connection(conn_id(self.environment, service))

    @functools.cached_property
    def ingest(self) -> IngestClient:
        return IngestClient(service_url(self._connection("ingest")))

    @functools.cached_property
    def archiver(self) -> ArchiverClient:
        conn = self._connection("archiver")
        # a password of only spaces is an unset field, not a key
        key = conn.password if conn.password and conn.password.strip() else None
        return ArchiverClient(
            service_url(conn), api_key=key or self._archiver_key_from_aws(conn.extra_dejson)
        )

    def _archiver_key_from_aws(self, extra: dict[str, Any]) -> str:
        """The key from AWS Secrets Manager, for a connection without one.

        Read through the AWS connection the archiver connection's extra ``secrets_aws_conn_id``
        names, else ``hca_<env>_aws``, whose keys every file job also gets: a separate one keeps
        ingest's secrets out of reach of the cluster's nodes.
        """
        from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

        secret_name = f"ingest/{self.environment}/secrets"
        aws_conn_id = extra.get("secrets_aws_conn_id") or conn_id(self.environment, "aws")
        secrets = SecretsManagerHook(aws_conn_id=aws_conn_id)
        text = secrets.get_secret(secret_name)
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # the message would say nothing; the text is secret
            raise ValueError(f"secret {secret_name} is not JSON (value not shown)") from None
        if not isinstance(document, dict):
            raise ValueError(
                f"secret {secret_name} is not a JSON object but a {type(document).__name__}"
            )
        key = document.get(ARCHIVER_KEY_FIELD)
        if not key:
            raise ValueError(f"secret {secret_name} has no field {ARCHIVER_KEY_FIELD}")
        if not isinstance(key, str) or not key.strip():
            raise ValueError(
                f"secret {secret_name}: field {ARCHIVER_KEY_FIELD} is not a string "
                f"(a {type(key).__name__}; value not shown)"
            )
        mask_secret(key)
        self.log.info("archiver API key read from AWS Secrets Manager secret %s", secret_name)
        return key

    def request_grace(self) -> timedelta:
        """How long to wait for the archiver's record before asking again (extra ``request_grace``).

        The old archiver retries its upstream calls for ~20 minutes before giving up silently.
        """
        return self._archiver_grace("request_grace", DEFAULT_REQUEST_GRACE_SECONDS)

    def complete_grace(self) -> timedelta:
        """How long after asking to complete DSP may stay Draft before we ask again (extra
        ``complete_grace``): validation is done by then, so the archiver submits within minutes."""
        return self._archiver_grace("complete_grace", DEFAULT_COMPLETE_GRACE_SECONDS)

    def writeback_grace(self) -> timedelta:
        """How long DSP may be Completed with the envelope still Archiving before the archiver's
        write-back counts as lost (extra ``writeback_grace``): it takes minutes, but each of its
        calls to ingest may retry for ~20 minutes first."""
        return self._archiver_grace("writeback_grace", DEFAULT_WRITEBACK_GRACE_SECONDS)

    def _archiver_grace(self, name: str, default_seconds: float) -> timedelta:
        """Extra ``name`` of the archiver connection, a number of seconds above 0 and under a
        year: 0 would ask the archiver again at once (its requests are not idempotent), text or
        infinity would fail deep in a wait with Python's words only, and JSON true would be 1 s
        (the completion wait stopped on a healthy Draft, and the archiver asked again)."""
        value = self._connection("archiver").extra_dejson.get(name, default_seconds)
        try:
            grace = timedelta(0) if isinstance(value, bool) else timedelta(seconds=float(value))
        except (TypeError, ValueError, OverflowError):
            grace = timedelta(0)
        if not timedelta(0) < grace < ONE_YEAR:
            raise ValueError(
                f"connection {conn_id(self.environment, 'archiver')}: extra {name} must be a "
                f"number of seconds above 0 and under a year, got {value!r}"
            )
        return grace

    @functools.cached_property
    def aap(self) -> AapTokenSource:
        conn = self._connection("dsp")
        aap_url = conn.extra_dejson.get("aap_url")
        if not aap_url:
            raise ValueError(f"connection {conn.conn_id} has no extra 'aap_url'")
        return AapTokenSource(aap_url, conn.login, conn.password)

    @functools.cached_property
    def dsp(self) -> DspClient:
        return DspClient(service_url(self._connection("dsp")), self.aap)

    def file_job_settings(self) -> dict[str, str]:
        """What a file job needs to know that is no secret, as the connections say it: the
        services' addresses and the AWS region. Keyed like the job's environment variables
        (``hca_archive.filejob.credentials``)."""
        dsp = self._connection("dsp")
        aws = self._aws_hook().conn_config
        return _by_variable(
            {
                "aap_url": dsp.extra_dejson.get("aap_url"),
                "s3_endpoint_url": aws.endpoint_url,
                "aws_region": aws.region_name,
                "dsp_url": service_url(dsp),
            }
        )

    def file_job_credentials(self) -> dict[str, str]:
        """What a file job needs to read S3 and upload to DSP, its settings included; staged in
        a 0600 file, never argv. Keyed like the job's environment variables."""
        dsp = self._connection("dsp")
        aws = self._aws_hook().get_credentials()
        secrets = {
            "aap_username": dsp.login,
            "aap_password": dsp.password,
            "aws_access_key_id": aws.access_key,
            "aws_secret_access_key": aws.secret_key,
            "aws_session_token": aws.token,
        }
        # the region: the connection's, else this worker's, for an LSF node has neither
        worker = _by_variable({"aws_region": os.environ.get("AWS_DEFAULT_REGION")})
        return {**worker, **self.file_job_settings(), **_by_variable(secrets)}

    def _aws_hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=conn_id(self.environment, "aws"), client_type="s3")


def _by_variable(values: dict[str, str | None]) -> dict[str, str]:
    return {ENVIRONMENT_NAMES[name]: value for name, value in values.items() if value}
