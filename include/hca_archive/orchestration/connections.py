"""Which Airflow connection holds what, per environment.

Each environment (sandbox, dev, staging, prod) is a set of connections named
``hca_<environment>_<service>``; hosts and credentials live there, never in code.

| service  | type | holds                                                                  |
|----------|------|------------------------------------------------------------------------|
| ingest   | http | ingest API URL                                                         |
| archiver | http | archiver URL; password = API key (else AWS Secrets Manager)            |
| dsp      | http | DSP URL; login/password = AAP account; extra ``aap_url``               |
| aws      | aws  | S3 access for the file jobs and Secrets Manager (extra ``endpoint_url``) |
| ssh      | ssh  | the LSF cluster's login node (runner ``lsf``)                          |
| kubernetes | kubernetes | the cluster of runner ``kubernetes``                           |

Every extra each one takes: ``docs/deploy.md``, section 3.
"""

from __future__ import annotations

from typing import Any

ENVIRONMENTS = ("sandbox", "dev", "staging", "prod")
RUNNERS = ("local", "lsf", "kubernetes")


def conn_id(environment: str, service: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}; expected one of {ENVIRONMENTS}")
    return f"hca_{environment}_{service}"


def service_url(conn: Any) -> str:
    """The base URL of an HTTP connection, whether its host holds a full URL or a bare name."""
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(f"connection {conn.conn_id} has no host")
    if "://" in host:
        return host
    scheme = next(
        (value for value in (conn.schema, conn.conn_type) if value in ("http", "https")), "https"
    )
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{host}{port}"
