"""Byte progress: a bar when stderr is a terminal, else a log line every 10 s or 10%."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

log = logging.getLogger(__name__)

BAR_WIDTH = 30
BAR_REFRESH_SECONDS = 0.2


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class Progress:
    """Thread-safe counter of bytes done towards ``total`` for one labelled transfer."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        interval: float = 10.0,
        start: int = 0,
    ) -> None:
        self.label = label
        self.total = total
        self.done = start
        self._stream = stream if stream is not None else sys.stderr
        self._interactive = self._stream.isatty()
        self._interval = interval
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_shown = self._started
        self._last_tenth = self._tenth(start)

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if self._interactive:
                if now - self._last_shown >= BAR_REFRESH_SECONDS:
                    self._draw_bar(now)
            else:
                tenth = self._tenth(self.done)
                if tenth > self._last_tenth or now - self._last_shown >= self._interval:
                    self._last_tenth = tenth
                    self._write_line(now)

    def close(self) -> None:
        with self._lock:
            if self._interactive:
                self._draw_bar(time.monotonic())
                self._stream.write("\n")
                self._stream.flush()

    def _tenth(self, done: int) -> int:
        return (done * 10) // self.total if self.total else 10

    def _rate(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        return f"{self.done / elapsed / 1e6:.1f} MB/s"

    def _percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    def _draw_bar(self, now: float) -> None:
        filled = int(BAR_WIDTH * self._percent() / 100)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self._stream.write(
            f"\r{self.label} [{bar}] {self._percent():5.1f}% "
            f"{megabytes(self.done)}/{megabytes(self.total)} {self._rate(now)}"
        )
        self._stream.flush()
        self._last_shown = now

    def _write_line(self, now: float) -> None:
        log.info(
            "%s: %.0f%% (%s of %s, %s)",
            self.label,
            self._percent(),
            megabytes(self.done),
            megabytes(self.total),
            self._rate(now),
        )
        self._last_shown = now
