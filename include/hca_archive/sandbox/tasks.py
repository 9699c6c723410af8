"""Durable delayed tasks: the background work of the stand-ins, kept in SQLite across restarts."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from hca_archive.sandbox.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
Handler = Callable[[dict[str, Any]], None]


class Scheduler:
    """Runs due tasks one at a time in a background thread; a task is removed once it has run."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._handlers: dict[str, Handler] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandbox-tasks", daemon=True)

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def schedule(
        self,
        kind: str,
        payload: dict[str, Any],
        delay: float = 0.0,
        key: str = "",
    ) -> None:
        """Queue a task, due ``delay`` seconds from now."""
        with self._store.tx() as db:
            db.execute(
                "INSERT INTO tasks (due, kind, key, payload) VALUES (?, ?, ?, ?)",
                (time.time() + delay, kind, key, json.dumps(payload)),
            )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            task = self._store.one(
                "SELECT id, kind, payload FROM tasks WHERE due <= ? ORDER BY due, id LIMIT 1",
                (time.time(),),
            )
            if task is None:
                self._stopping.wait(POLL_SECONDS)
                continue
            try:
                self._handlers[task["kind"]](json.loads(task["payload"]))
            except Exception:
                log.exception("background task %s %s failed", task["kind"], task["payload"])
            with self._store.tx() as db:
                db.execute("DELETE FROM tasks WHERE id = ?", (task["id"],))
