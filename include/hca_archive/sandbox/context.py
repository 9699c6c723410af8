"""What every stand-in shares: the store, the task scheduler, the URLs and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hca_archive.sandbox.aap import TokenIssuer
from hca_archive.sandbox.store import Store
from hca_archive.sandbox.tasks import Scheduler


@dataclass
class Urls:
    """Base URLs (no trailing slash), known once each service has bound its port."""

    archiver: str = ""
    ingest: str = ""
    dsp: str = ""
    aap: str = ""
    s3: str = ""
    admin: str = ""


@dataclass
class Context:
    store: Store
    scheduler: Scheduler
    tokens: TokenIssuer
    state_dir: Path
    bucket: str
    archiver_api_key: str
    plan_delay: float
    process_delay: float
    seed: int
    urls: Urls = field(default_factory=Urls)

    @property
    def uploads_dir(self) -> Path:
        return self.state_dir / "uploads"

    @property
    def objects_dir(self) -> Path:
        return self.state_dir / "objects"

    def submission_url(self, dsp_uuid: str) -> str:
        return f"{self.urls.dsp}/api/submissions/{dsp_uuid}"
