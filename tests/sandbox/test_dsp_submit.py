"""DSP's submit moves only a Draft submission: two background completions that both saw Draft
submit it once (a second submit had moved a Completed submission back to Submitted)."""

from __future__ import annotations

from types import SimpleNamespace

from hca_archive.sandbox import dsp
from hca_archive.sandbox.store import Store, now_iso


def context(tmp_path, status: str) -> tuple[SimpleNamespace, list[str]]:
    store = Store(tmp_path / "state.sqlite")
    with store.tx() as db:
        db.execute(
            "INSERT INTO dsp_submissions VALUES ('d-1', 'e-1', ?, ?, ?)",
            (status, now_iso(), now_iso()),
        )
    scheduled: list[str] = []
    scheduler = SimpleNamespace(schedule=lambda kind, *args, **kwargs: scheduled.append(kind))
    return SimpleNamespace(store=store, scheduler=scheduler, process_delay=0.1), scheduled


def status(ctx: SimpleNamespace) -> str:
    return ctx.store.one("SELECT status FROM dsp_submissions WHERE id = 'd-1'")["status"]


def test_a_draft_is_submitted_once_however_often_it_is_asked(tmp_path):
    ctx, scheduled = context(tmp_path, "Draft")
    assert dsp.submit(ctx, "d-1") is True
    assert dsp.submit(ctx, "d-1") is False
    assert status(ctx) == "Submitted" and scheduled == ["process"]


def test_a_completed_submission_is_not_submitted_again(tmp_path):
    ctx, scheduled = context(tmp_path, "Completed")
    assert dsp.submit(ctx, "d-1") is False
    assert status(ctx) == "Completed" and scheduled == []
