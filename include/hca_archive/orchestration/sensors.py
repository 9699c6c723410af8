"""Deferrable waits: check once on the worker, then hand the waiting to the triggerer."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from hca_archive.archiving import RunStopped, plain_duration
from hca_archive.orchestration.step_record import recorded_step


class ArchiveProgressSensor(BaseOperator):
    """Wait until a named archiving check is done; its value becomes the task's XCom.

    Fails without retrying when the check stops the run or ``timeout`` passes: the message says
    what was awaited and what was last seen, which a retry would not change.
    """

    template_fields = ("environment", "arguments", "stuck_note")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        environment: str,
        check: str,
        arguments: dict[str, Any],
        awaiting: str,
        poll_interval: float = 10.0,
        timeout: timedelta = timedelta(hours=6),
        stuck_note: str | None = None,
        **kwargs: Any,
    ) -> None:
        """``stuck_note``: an Airflow Variable that, when the wait stops on a status a check
        marks stuck, keeps since when that status lasted (the earliest such time): a later step
        (a cleared ``complete_submission``) needs it, and the triggerer cannot write it."""
        super().__init__(**kwargs)
        self.environment = environment
        self.check = check
        self.arguments = arguments
        self.awaiting = awaiting
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.stuck_note = stuck_note

    def execute(self, context: Any) -> Any:
        # Imported here, not at parse time: they bring the HTTP clients and Airflow's trigger base.
        from hca_archive.orchestration.progress_checks import run_check
        from hca_archive.orchestration.triggers import ArchiveProgressTrigger

        started = time.time()
        with recorded_step(context, started) as record:
            progress = run_check(self.check, self.environment, self.arguments)
            checked = time.time()
            if progress.done:
                self.log.info("%s: %s", self.awaiting, progress.status)
                record.outcome = progress.status
                return progress.value
            record.deferred = True
            self.log.info(
                "waiting for %s (%s); polling every %ss in the triggerer",
                self.awaiting,
                progress.status,
                self.poll_interval,
            )
        self.defer(
            trigger=ArchiveProgressTrigger(
                environment=self.environment,
                check=self.check,
                arguments=self.arguments,
                poll_interval=self.poll_interval,
                deadline=started + self.timeout.total_seconds(),
                seen_status=progress.status,
                seen_since=checked,
            ),
            method_name="execute_complete",
            kwargs={"started": started},
        )

    def execute_complete(self, context: Any, event: dict[str, Any], started: float) -> Any:
        with recorded_step(context, started) as record:
            status, message = event["status"], event["message"]
            if status == "stopped":
                if self.stuck_note and isinstance(event.get("stuck_since"), (int, float)):
                    note_earliest(self.stuck_note, float(event["stuck_since"]))
                raise RunStopped(message)
            if status == "timeout":
                waited = plain_duration(self.timeout)
                raise RunStopped(
                    f"gave up waiting for {self.awaiting} after {waited}; last seen: {message}. "
                    f"Clearing {self.task_id} waits another {waited}."
                )
            if status != "done":
                raise AirflowFailException(f"unexpected trigger event {event!r}")
            self.log.info("%s: %s", self.awaiting, message)
            record.outcome = message
            return event.get("value")


def note_earliest(key: str, when: float) -> None:
    """Keep in Variable ``key`` the earliest of its time and ``when``."""
    from airflow.sdk import Variable

    noted = Variable.get(key, default=None, deserialize_json=True)
    if isinstance(noted, (int, float)) and noted <= when:
        return
    Variable.set(key, when, serialize_json=True)
