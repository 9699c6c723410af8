"""Durations an operator sets through the environment of the Airflow processes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

ONE_YEAR = timedelta(days=365)


def env_duration(
    name: str,
    default: timedelta,
    unit: Literal["seconds", "minutes"],
    environ: Mapping[str, str] | None = None,
) -> timedelta:
    """``name`` read as a number of ``unit``, or ``default`` when unset; a clear error when it is
    not a number from zero up to a year."""
    environ = os.environ if environ is None else environ
    value = environ.get(name)
    if value is None:
        return default
    try:
        duration = timedelta(**{unit: float(value)})
    except (ValueError, OverflowError):
        duration = -ONE_YEAR
    if not timedelta(0) <= duration < ONE_YEAR:
        raise ValueError(f"{name} must be a number of {unit}, got {value!r}")
    return duration
