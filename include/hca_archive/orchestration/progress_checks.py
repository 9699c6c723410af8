"""The conditions an archiving run waits for, by name, so a trigger can be serialised."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hca_archive import archiving
from hca_archive.archiving import Progress
from hca_archive.http import ServiceError
from hca_archive.orchestration.connections import ENVIRONMENTS
from hca_archive.orchestration.hooks import HcaArchiveHook

CHECKS: dict[str, Callable[[HcaArchiveHook, dict[str, Any]], Progress]] = {
    "dsp_submission": lambda hook, args: archiving.dsp_submission_progress(
        hook.archiver, args["submission_uuid"]
    ),
    "metadata": lambda hook, args: archiving.metadata_progress(hook.archiver, args["dsp_uuid"]),
    "validation": lambda hook, args: archiving.validation_progress(hook.archiver, args["dsp_uuid"]),
    "completion": lambda hook, args: archiving.completion_progress(
        hook.archiver,
        hook.dsp,
        hook.ingest,
        args["dsp_uuid"],
        args["submission_uuid"],
        writeback_grace=hook.writeback_grace,
    ),
}


@functools.lru_cache(maxsize=len(ENVIRONMENTS))
def _hook(environment: str) -> HcaArchiveHook:
    """One hook per environment and process, so the AAP token is reused between polls."""
    return HcaArchiveHook(environment)


def run_check(check: str, environment: str, arguments: dict[str, Any]) -> Progress:
    try:
        return CHECKS[check](_hook(environment), arguments)
    except ServiceError as error:
        if error.status in (401, 403):
            # a rotated API key or AAP password: read the connections (and the secret) again
            # at the next poll instead of using the old ones until the triggerer restarts
            _hook.cache_clear()
        raise
