"""Wait for an archiving condition in the triggerer, holding no worker slot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from hca_archive.archiving import RunStopped
from hca_archive.http import ServiceError
from hca_archive.orchestration.progress_checks import run_check


class ArchiveProgressTrigger(BaseTrigger):
    """Polls one named check (see ``progress_checks``) until it is done, stops, or times out.

    Service errors while polling are logged and polled again: the deadline bounds them. A status
    a check marks ``stuck_after`` ends the wait once it has lasted that long, unchanged.

    ``seen_status``/``seen_since``: what the sensor's own check answered, and when. A triggerer
    that restarts runs the trigger again from its arguments: counted from them, a status
    unchanged since the wait began is still found stuck in time, not a whole ``stuck_after``
    after the restart.
    """

    def __init__(
        self,
        environment: str,
        check: str,
        arguments: dict[str, Any],
        poll_interval: float,
        deadline: float,
        seen_status: str | None = None,
        seen_since: float | None = None,
    ) -> None:
        super().__init__()
        self.environment = environment
        self.check = check
        self.arguments = arguments
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.seen_status = seen_status
        self.seen_since = seen_since

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "environment": self.environment,
                "check": self.check,
                "arguments": self.arguments,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "seen_status": self.seen_status,
                "seen_since": self.seen_since,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        last_status = "not checked yet"
        # the last status a check answered, and since when
        seen, seen_since = self.seen_status, self.seen_since
        if seen_since is None:
            seen, seen_since = None, time.time()
        while True:
            try:
                progress = await asyncio.to_thread(
                    run_check, self.check, self.environment, self.arguments
                )
            except RunStopped as stopped:
                yield TriggerEvent({"status": "stopped", "message": str(stopped)})
                return
            except ServiceError as error:
                last_status = f"service error: {error}"
                self.log.warning("%s: %s", self.check, last_status)
            else:
                if progress.done:
                    yield TriggerEvent(
                        {"status": "done", "message": progress.status, "value": progress.value}
                    )
                    return
                if progress.status != last_status:
                    self.log.info("%s: %s", self.check, progress.status)
                last_status = progress.status
                if progress.status != seen:
                    seen, seen_since = progress.status, time.time()
                if (
                    progress.stuck_after is not None
                    and time.time() - seen_since >= progress.stuck_after
                ):
                    event = {"status": "stopped", "message": progress.stuck}
                    if progress.stuck_noted:
                        event["stuck_since"] = seen_since
                    yield TriggerEvent(event)
                    return
            if time.time() >= self.deadline:
                yield TriggerEvent({"status": "timeout", "message": last_status})
                return
            await asyncio.sleep(self.poll_interval)
