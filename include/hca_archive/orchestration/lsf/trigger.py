"""Deferrable wait for one LSF job, sharing the cluster's poller with every other waiting job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from hca_archive.lsf.commands import bkill_argv
from hca_archive.lsf.names import JobPaths
from hca_archive.lsf.outputs import parse_bkill
from hca_archive.orchestration.lsf.cluster import connect_async, run_async
from hca_archive.orchestration.lsf.poller import Update, poller_for


class LsfJobTrigger(BaseTrigger):
    """Fires once the job is DONE or EXIT, LSF no longer knows it, polling keeps failing, or
    ``deadline`` (epoch seconds) passes with the job still pending or running.

    The event is ``{"job_id", "job_name", "directory", "deadline", "outcome": "finished"|"missing"|
    "error"|"timeout", "stat", "exit_code", "message"}``: the job's name and work directory ride
    along so the task can resume from the event alone; it checks the job again itself, the event
    is a wake-up.
    """

    def __init__(
        self,
        ssh_conn_id: str,
        job_id: str,
        job_name: str,
        directory: str,
        poll_interval: float = 30.0,
        deadline: float | None = None,
    ):
        super().__init__()
        self.ssh_conn_id = ssh_conn_id
        self.job_id = job_id
        self.job_name = job_name
        self.directory = directory
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ssh_conn_id": self.ssh_conn_id,
                "job_id": self.job_id,
                "job_name": self.job_name,
                "directory": self.directory,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = poller_for(self.ssh_conn_id)
        updates = poller.subscribe(self.job_id, self.poll_interval)
        last_stat = None
        try:
            while True:
                left = None if self.deadline is None else max(0.0, self.deadline - time.time())
                try:
                    update = await asyncio.wait_for(updates.get(), left)
                except TimeoutError:
                    yield TriggerEvent(self._timeout_event(last_stat))
                    return
                if update.state is not None and update.state.active:
                    if update.state.stat != last_stat:
                        last_stat = update.state.stat
                        self.log.info(
                            "LSF job %s (%s) is %s", self.job_id, self.job_name, last_stat
                        )
                    continue
                yield TriggerEvent(self._event(update))
                return
        finally:
            poller.unsubscribe(self.job_id, updates)

    def _event(self, update: Update) -> dict[str, Any]:
        state = update.state
        if state is not None:
            outcome, message = "finished", f"LSF job {self.job_id} is {state.stat}"
        elif update.missing:
            outcome, message = "missing", f"LSF job {self.job_id} is not known to LSF (any more)"
        else:
            outcome, message = "error", str(update.error)
        return {
            "job_id": self.job_id,
            "job_name": self.job_name,
            "directory": self.directory,
            "deadline": self.deadline,
            "outcome": outcome,
            "stat": state.stat if state else None,
            "exit_code": state.exit_code if state else None,
            "message": message,
        }

    def _timeout_event(self, stat: str | None) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "job_name": self.job_name,
            "directory": self.directory,
            "deadline": self.deadline,
            "outcome": "timeout",
            "stat": stat,
            "exit_code": None,
            "message": f"LSF job {self.job_id} is still {stat or 'not finished'} at the deadline",
        }

    async def on_kill(self) -> None:
        """The user killed the deferred task (mark failed, clear): stop the LSF job too."""
        connection = await connect_async(self.ssh_conn_id)
        try:
            result = await run_async(connection, bkill_argv([self.job_id]))
            # a job killed while pending never reads (and deletes) its credentials
            await run_async(connection, ["rm", "-f", "--", JobPaths(self.directory).credentials])
        finally:
            connection.close()
        outcome = parse_bkill(result.stdout, result.stderr).get(self.job_id, "unknown")
        self.log.info("bkill %s: %s", self.job_id, outcome)
