"""The archiver connection's grace periods (extras ``request_grace``, ``complete_grace``,
``writeback_grace``): a value that is no number of seconds in (0, 1 year) is refused naming the
connection and the extra, not met deep in a wait (the trigger's float() or timedelta() errors),
and 0 would ask the non-idempotent archiver again at once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hca_archive.orchestration.hooks import HcaArchiveHook

GRACES = ("request_grace", "complete_grace", "writeback_grace")


def hook(monkeypatch: pytest.MonkeyPatch, extra: dict) -> HcaArchiveHook:
    archiver = {"conn_type": "http", "host": "archiver.example", "password": "k", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_HCA_DEV_ARCHIVER", json.dumps(archiver))
    return HcaArchiveHook("dev")


@pytest.mark.parametrize("name", GRACES)
@pytest.mark.parametrize(
    "value", ["1h", "", None, 0, -5, "inf", "nan", 1e300, 365 * 86400, [60], True, False]
)
def test_a_grace_that_is_no_duration_is_refused_naming_connection_and_extra(
    monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    with pytest.raises(ValueError) as refused:
        getattr(hook(monkeypatch, {name: value}), name)()
    assert str(refused.value) == (
        f"connection hca_dev_archiver: extra {name} must be a number of seconds above 0 and "
        f"under a year, got {value!r}"
    )


@pytest.mark.parametrize("name", GRACES)
def test_a_grace_given_as_seconds_in_text_or_number_is_taken(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    assert getattr(hook(monkeypatch, {name: "90"}), name)() == timedelta(seconds=90)
    assert getattr(hook(monkeypatch, {name: 0.5}), name)() == timedelta(seconds=0.5)


@pytest.mark.parametrize(
    ("name", "default"),
    [("request_grace", 1800), ("complete_grace", 600), ("writeback_grace", 3600)],
)
def test_a_grace_left_unset_is_the_documented_default(
    monkeypatch: pytest.MonkeyPatch, name: str, default: int
) -> None:
    """docs/deploy.md's defaults. The write-back's must outlast the ~20 minutes the archiver
    retries each call to ingest, or the completion wait stops on a healthy write-back."""
    assert getattr(hook(monkeypatch, {}), name)() == timedelta(seconds=default)
