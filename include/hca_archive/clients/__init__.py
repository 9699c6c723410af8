"""Typed clients of the services an archiving run talks to (no Airflow)."""

from hca_archive.clients.aap import AapTokenSource, TokenSource, jwt_expiry
from hca_archive.clients.archiver import (
    ArchiveEntity,
    ArchiveError,
    ArchiverClient,
    ArchiveSubmission,
    ValidationIssue,
    ValidationReport,
)
from hca_archive.clients.dsp import Blockers, DspClient, ProcessingStatus, dsp_root
from hca_archive.clients.ingest import Envelope, IngestClient

__all__ = [
    "AapTokenSource",
    "ArchiveEntity",
    "ArchiveError",
    "ArchiveSubmission",
    "ArchiverClient",
    "Blockers",
    "DspClient",
    "Envelope",
    "IngestClient",
    "ProcessingStatus",
    "TokenSource",
    "ValidationIssue",
    "ValidationReport",
    "dsp_root",
    "jwt_expiry",
]
