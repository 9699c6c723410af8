"""One ``bjobs`` per poll interval per cluster for every LSF job waited on in a triggerer.

Triggers subscribe a job id to the poller of their SSH connection (one per connection id and
event loop). The poller holds one SSH connection, asks ``bjobs -o ... -json ID...`` for all
subscribed ids at once, hands each subscriber its job's state, and closes down when nobody is
left. Connection failures are retried with backoff; after too many in a row every subscriber is
told, so its task can look for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncssh

from hca_archive.lsf.commands import bjobs_status_argv
from hca_archive.lsf.outputs import BjobsAnswer, JobState, parse_bjobs_json
from hca_archive.orchestration.lsf.cluster import connect_async, run_async

MAX_FAILURES = 5
MAX_BACKOFF = 30.0  # seconds between retries after failures in a row: 2, 4, 8, ... capped

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Update:
    """What one poll says about a job: its state, ``missing`` (LSF does not know it) or an error."""

    state: JobState | None = None
    missing: bool = False
    error: str | None = None


class BjobsPoller:
    def __init__(self, ssh_conn_id: str, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        self.ssh_conn_id = ssh_conn_id
        self._key = key
        self._subscribers: dict[str, dict[asyncio.Queue[Update], float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._connection: asyncssh.SSHClientConnection | None = None

    def subscribe(self, job_id: str, interval: float) -> asyncio.Queue[Update]:
        queue: asyncio.Queue[Update] = asyncio.Queue()
        self._subscribers.setdefault(job_id, {})[queue] = interval
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[Update]) -> None:
        waiting = self._subscribers.get(job_id, {})
        waiting.pop(queue, None)
        if not waiting:
            self._subscribers.pop(job_id, None)

    async def _poll(self) -> None:
        failures = 0
        try:
            while self._subscribers:
                job_ids = sorted(self._subscribers)
                try:
                    answer = await self._query(job_ids)
                except Exception as error:  # whatever it is, the waiting triggers must hear of it
                    failures += 1
                    await self._disconnect()
                    log.warning(
                        "bjobs via %s failed (%d in a row): %s", self.ssh_conn_id, failures, error
                    )
                    if failures >= MAX_FAILURES:
                        failed = Update(error=f"LSF poll failed {failures} times: {error}")
                        self._publish(dict.fromkeys(job_ids, failed))
                        failures = 0
                    await asyncio.sleep(min(2**failures, MAX_BACKOFF))
                    continue
                failures = 0
                states = answer.by_id()
                missing = Update(missing=True)
                self._publish(
                    {
                        job_id: Update(state=states[job_id]) if job_id in states else missing
                        for job_id in job_ids
                    }
                )
                await asyncio.sleep(self._interval())
        finally:
            # No await between the last emptiness check and leaving the registry, so a trigger
            # subscribing now either saw this poller running or gets a new one.
            if _POLLERS.get(self._key) is self:
                del _POLLERS[self._key]
            await self._disconnect()

    async def _query(self, job_ids: list[str]) -> BjobsAnswer:
        if self._connection is None:
            self._connection = await connect_async(self.ssh_conn_id)
        result = await run_async(self._connection, bjobs_status_argv(job_ids))
        return parse_bjobs_json(result.stdout, result.stderr, result.returncode)

    def _publish(self, updates: dict[str, Update]) -> None:
        for job_id, update in updates.items():
            for queue in list(self._subscribers.get(job_id, {})):
                queue.put_nowait(update)

    def _interval(self) -> float:
        intervals = [value for waiting in self._subscribers.values() for value in waiting.values()]
        return min(intervals, default=1.0)

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
            with contextlib.suppress(Exception):
                await connection.wait_closed()


_POLLERS: dict[tuple[asyncio.AbstractEventLoop, str], BjobsPoller] = {}


def poller_for(ssh_conn_id: str) -> BjobsPoller:
    """The poller of this connection in the running event loop (created on first use)."""
    key = (asyncio.get_running_loop(), ssh_conn_id)
    poller = _POLLERS.get(key)
    if poller is None:
        poller = _POLLERS[key] = BjobsPoller(ssh_conn_id, key)
    return poller
