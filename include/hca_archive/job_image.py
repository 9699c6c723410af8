"""The file job's container image (``include/docker/job.Dockerfile``), which the LSF and
Kubernetes runners run unless configured otherwise."""

from __future__ import annotations

from importlib import metadata

IMAGE_REPOSITORY = "ghcr.io/ebi-ait/hca-archive-job"


def release_job_image() -> str | None:
    """The job image of the installed hca-archive release; None when it is not installed."""
    try:
        return f"{IMAGE_REPOSITORY}:{metadata.version('hca-archive')}"
    except metadata.PackageNotFoundError:
        return None
