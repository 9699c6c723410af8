"""Progress: a bar on a terminal, a log line per 10% (or per interval) otherwise."""

from __future__ import annotations

import io
import logging

from hca_archive.filejob.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_a_line_is_logged_per_tenth(caplog):
    caplog.set_level(logging.INFO, logger="hca_archive.filejob.progress")
    stream = io.StringIO()
    progress = Progress("upload x.bam", 1000, stream=stream, interval=3600)
    for _ in range(100):
        progress.advance(10)
    progress.close()
    percents = [message.split(": ")[1].split("%")[0] for message in caplog.messages]
    assert percents == [str(n) for n in range(10, 101, 10)]
    assert stream.getvalue() == ""


def test_a_resumed_transfer_counts_from_where_it_was(caplog):
    caplog.set_level(logging.INFO, logger="hca_archive.filejob.progress")
    progress = Progress("download R1", 1000, stream=io.StringIO(), start=500, interval=3600)
    progress.advance(100)
    assert caplog.messages[0].startswith("download R1: 60%")


def test_on_a_terminal_a_bar_is_drawn(caplog):
    caplog.set_level(logging.INFO, logger="hca_archive.filejob.progress")  # or no line is seen
    terminal = Terminal()
    progress = Progress("upload x.bam", 1000, stream=terminal)
    progress.advance(1000)
    progress.close()
    assert "\rupload x.bam [" in terminal.getvalue()
    assert "100.0%" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")
    assert caplog.records == []
