"""The sandbox's durable state: one SQLite file, so a restarted sandbox loses nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (
    id TEXT PRIMARY KEY, uuid TEXT UNIQUE NOT NULL, state TEXT NOT NULL,
    submission_date TEXT NOT NULL, update_date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    manifest_id TEXT PRIMARY KEY, envelope_uuid TEXT NOT NULL, position INTEGER NOT NULL,
    kind TEXT NOT NULL, schema TEXT, reads INTEGER NOT NULL, inputs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS s3_objects (key TEXT PRIMARY KEY, path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS archive_records (
    dsp_uuid TEXT PRIMARY KEY, submission_uuid TEXT NOT NULL, created TEXT NOT NULL,
    plan TEXT NOT NULL, errors TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dsp_submissions (
    id TEXT PRIMARY KEY, envelope_uuid TEXT NOT NULL, status TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    uuid TEXT PRIMARY KEY, dsp_uuid TEXT NOT NULL, position INTEGER NOT NULL, type TEXT NOT NULL,
    alias TEXT NOT NULL, accession TEXT, processing_status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS expected_files (
    dsp_uuid TEXT NOT NULL, name TEXT NOT NULL, entity_uuid TEXT NOT NULL, kind TEXT NOT NULL,
    reads INTEGER NOT NULL, md5 TEXT, PRIMARY KEY (dsp_uuid, name));
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, dsp_uuid TEXT NOT NULL, name TEXT NOT NULL, length INTEGER NOT NULL,
    offset INTEGER NOT NULL, created TEXT NOT NULL, completed TEXT, md5 TEXT,
    check_state TEXT NOT NULL DEFAULT 'none', check_error TEXT);
CREATE INDEX IF NOT EXISTS uploads_by_file ON uploads (dsp_uuid, name);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, due REAL NOT NULL, kind TEXT NOT NULL,
    key TEXT NOT NULL, payload TEXT NOT NULL);
"""


def now_iso() -> str:
    """The current time as the Java services render it (UTC, milliseconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Store:
    """A single SQLite connection shared by all threads, serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, params).fetchone()

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row["value"]

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_number(self, counter: str) -> int:
        """The next value of a named counter (accession numbers, run serials), durable."""
        with self.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (counter,)).fetchone()
            value = int(row["value"]) + 1 if row else 1
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (counter, str(value))
            )
            return value

    def close(self) -> None:
        with self._lock:
            self._db.close()
