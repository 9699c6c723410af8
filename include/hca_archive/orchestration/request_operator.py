"""Ask the archiver for a DSP submission, and wait for it, without ever asking twice by accident.

The archiver's POST creates a new DSP submission each time and answers before doing the work, so
"did my request arrive?" is only answered by the record appearing. The operator marks a request
in Airflow's task state store before making it; a retry or a resumed deferral then waits for that
request's record instead of asking again. Only when the archiver made nothing within the grace
period is it asked again, at most ``max_requests`` times.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from hca_archive import archiving
from hca_archive.archiving import RunStopped
from hca_archive.orchestration.step_record import recorded_step

log = logging.getLogger(__name__)

TRIGGERED_AT = "triggered_at"
REQUESTS = "requests"


class _MemoryStore(dict):
    """Stands in for the task state store where there is none (it then lasts one attempt)."""

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        self[key] = value


class RequestArchiveOperator(BaseOperator):
    """Returns the archive record's summary (``dsp_uuid`` ...) once the DSP submission exists."""

    template_fields = ("environment", "submission_uuid", "alias_prefix", "exclude_types", "dry_run")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        environment: str,
        submission_uuid: str,
        alias_prefix: str,
        exclude_types: list[str] | str,
        dry_run: bool | str,
        max_requests: int = 3,
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.environment = environment
        self.submission_uuid = submission_uuid
        self.alias_prefix = alias_prefix
        self.exclude_types = exclude_types
        self.dry_run = dry_run
        self.max_requests = max_requests
        self.poll_interval = poll_interval

    def _store(self, context: Any) -> Any:
        store = context.get("task_state_store")
        if store is None:
            log.warning("no task state store: a retry cannot know whether this attempt asked")
            store = _MemoryStore()
        return store

    def execute(self, context: Any) -> Any:
        return self._request(context, time.time())

    def _request(self, context: Any, started: float) -> Any:
        from hca_archive.orchestration.hooks import HcaArchiveHook

        hook = HcaArchiveHook(self.environment)
        self.grace = hook.request_grace()
        store = self._store(context)

        def mark_requested() -> None:
            store.set(REQUESTS, int(store.get(REQUESTS) or 0) + 1)
            store.set(TRIGGERED_AT, time.time())

        with recorded_step(context, started) as record:
            request = archiving.request_archive(
                hook.archiver,
                self.submission_uuid,
                alias_prefix=self.alias_prefix,
                exclude_types=list(self.exclude_types or []) or None,
                triggered_at=store.get(TRIGGERED_AT),
                trigger_grace_seconds=self.grace.total_seconds(),
                mark_triggered=mark_requested,
                dry_run=bool(self.dry_run),
            )
            if request.action == "reused":
                record.outcome = f"DSP submission {request.record['dsp_uuid']} exists; reusing it"
                log.info("%s", record.outcome)
                return request.record
            if request.action == "dry-run":
                raise AirflowSkipException(
                    "dry run: would ask the archiver to archive the metadata"
                )
            record.deferred = True
            log.info(
                "%s; waiting for the DSP submission until %s",
                "asked the archiver to archive the metadata"
                if request.action == "triggered"
                else "an earlier attempt asked the archiver; not asking again",
                time.strftime(
                    "%H:%M:%S", time.localtime(store.get(TRIGGERED_AT) + self.grace.total_seconds())
                ),
            )
        self._defer(store, started)

    def _defer(self, store: Any, started: float) -> None:
        from hca_archive.orchestration.triggers import ArchiveProgressTrigger

        self.defer(
            trigger=ArchiveProgressTrigger(
                environment=self.environment,
                check="dsp_submission",
                arguments={"submission_uuid": self.submission_uuid},
                poll_interval=self.poll_interval,
                deadline=store.get(TRIGGERED_AT) + self.grace.total_seconds(),
            ),
            method_name="execute_complete",
            kwargs={"started": started, "grace_seconds": self.grace.total_seconds()},
        )

    def execute_complete(
        self, context: Any, event: dict[str, Any], started: float, grace_seconds: float
    ) -> Any:
        store = self._store(context)
        self.grace = timedelta(seconds=grace_seconds)
        if event["status"] == "timeout":
            requests = int(store.get(REQUESTS) or 0)
            if requests >= self.max_requests:
                with recorded_step(context, started):
                    raise RunStopped(
                        f"the archiver made no DSP submission for {self.submission_uuid} after "
                        f"{requests} requests, each awaited {self.grace}; see the archiver's log"
                    )
            log.warning("no DSP submission %s after asking; asking again", self.grace)
            return self._request(context, started)
        with recorded_step(context, started) as record:
            if event["status"] != "done":
                raise RunStopped(event["message"])
            record.outcome = event["message"]
            log.info("%s", record.outcome)
            return event["value"]
