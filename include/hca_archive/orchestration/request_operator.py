"""Ask the archiver for a DSP submission, and wait for it, without ever asking twice by accident.

The archiver's POST creates a new DSP submission each time and answers before doing the work, so
"did my request arrive?" is only answered by the record appearing. The operator marks a request
in an Airflow Variable before making it; a retry, a resumed deferral or another run for the same
submission then waits for that request's record instead of asking again. Only when the archiver
made nothing within the grace period is it asked again, at most ``max_requests`` times.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Variable
from airflow.sdk.exceptions import AirflowSkipException

from hca_archive import archiving
from hca_archive.archiving import RunStopped
from hca_archive.orchestration.extra_links import ArchiveSubmissionLink, DspSubmissionLink
from hca_archive.orchestration.step_record import recorded_step

log = logging.getLogger(__name__)

TRIGGERED_AT = "triggered_at"
REQUESTS = "requests"
CLAIM = "claim"
CLAIM_SETTLE_SECONDS = 2.0


class RequestMarker:
    """The durable note of our requests for one submission, in an Airflow Variable.

    A Variable, not the task's own state store, because two runs may archive one submission (a
    wrangler's and the sweep's): whichever asks first, the other waits for that request's record.
    """

    def __init__(self, environment: str, submission_uuid: str) -> None:
        self.key = f"hca_archive_request__{environment}__{submission_uuid}"

    def _values(self) -> dict[str, Any]:
        return Variable.get(self.key, default={}, deserialize_json=True)

    def get(self, name: str) -> Any:
        return self._values().get(name)

    def clear(self) -> None:
        Variable.delete(self.key)

    def claim(self) -> bool:
        """Note a request about to be made; False if another requester wrote after us.

        Two runs may both find no record and no note in the same instant. Each writes its own
        token, waits for writes to settle, and only the one whose token stayed asks the archiver.
        """
        token = uuid.uuid4().hex
        values = self._values()
        requests = int(values.get(REQUESTS) or 0) + 1
        Variable.set(
            self.key,
            {**values, REQUESTS: requests, TRIGGERED_AT: time.time(), CLAIM: token},
            serialize_json=True,
        )
        time.sleep(CLAIM_SETTLE_SECONDS)
        return self.get(CLAIM) == token


class RequestArchiveOperator(BaseOperator):
    """Returns the archive record's summary (``dsp_uuid`` ...) once the DSP submission exists."""

    template_fields = ("environment", "submission_uuid", "alias_prefix", "exclude_types", "dry_run")
    operator_extra_links = (ArchiveSubmissionLink(), DspSubmissionLink())
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

    def _marker(self) -> RequestMarker:
        return RequestMarker(self.environment, self.submission_uuid)

    def execute(self, context: Any) -> Any:
        return self._request(context, time.time())

    def _request(self, context: Any, started: float) -> Any:
        from hca_archive.orchestration.hooks import HcaArchiveHook

        hook = HcaArchiveHook(self.environment)
        self.grace = hook.request_grace()
        store = self._marker()
        with recorded_step(context, started) as record:
            try:
                request = archiving.request_archive(
                    hook.archiver,
                    self.submission_uuid,
                    alias_prefix=self.alias_prefix,
                    exclude_types=list(self.exclude_types or []) or None,
                    triggered_at=store.get(TRIGGERED_AT),
                    trigger_grace_seconds=self.grace.total_seconds(),
                    mark_triggered=store.claim,
                    dry_run=bool(self.dry_run),
                )
            except archiving.ArchiverRefused:
                store.clear()  # nothing was made: once the cause is fixed, a cleared task asks
                raise
            if request.action == "reused":
                store.clear()
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
        store = self._marker()
        self.grace = timedelta(seconds=grace_seconds)
        if event["status"] == "timeout":
            requests = int(store.get(REQUESTS) or 0)
            if requests >= self.max_requests:
                store.clear()
                with recorded_step(context, started):
                    raise RunStopped(
                        f"the archiver made no DSP submission for {self.submission_uuid} after "
                        f"{requests} requests, each awaited {archiving.plain_duration(self.grace)}"
                        ": ask the archiver's operators what its log says; clearing "
                        f"{self.task_id} asks again"
                    )
            log.warning("no DSP submission %s after asking; asking again", self.grace)
            return self._request(context, started)
        with recorded_step(context, started) as record:
            if event["status"] != "done":
                raise RunStopped(event["message"])
            store.clear()
            record.outcome = event["message"]
            log.info("%s", record.outcome)
            return event["value"]
