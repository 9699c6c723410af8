"""Fault knobs of the stand-ins: errors, HTML error pages, latency, dropped connections, hangs.

``drop_rate`` drops a request before the service sees it; ``drop_after_rate`` lets the service
act on it and then drops the answer, so the caller cannot tell whether it happened.
``die_after_dsp_completes`` (archiver) ends a background completion once DSP is Completed,
before it writes the accessions back and marks the envelope archived: the old service's process
dying there, which nothing reports.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, fields

SERVICES = ("archiver", "ingest", "dsp", "aap")
RATE_KNOBS = ("error_rate", "html500_rate", "drop_rate", "drop_after_rate")
SWITCH_KNOBS = ("hang", "die_after_dsp_completes")


class FaultSpecError(ValueError):
    """A fault setting names an unknown service or knob, or has a bad value."""


@dataclass
class Faults:
    error_rate: float = 0.0
    html500_rate: float = 0.0
    latency: float = 0.0
    drop_rate: float = 0.0
    hang: bool = False
    drop_after_rate: float = 0.0
    die_after_dsp_completes: bool = False

    def updated(self, knobs: dict[str, object]) -> Faults:
        """A copy with ``knobs`` applied; rejects unknown knobs and out-of-range values."""
        known = {f.name for f in fields(self)}
        values = asdict(self)
        for name, raw in knobs.items():
            if name not in known:
                raise FaultSpecError(
                    f"unknown fault knob {name!r} (known: {', '.join(sorted(known))})"
                )
            values[name] = _coerce(name, raw)
        return Faults(**values)

    def pick(self, rng: random.Random) -> str | None:
        """The next request's fate: "hang", "drop", "drop_after", "error", "html500" or None."""
        if self.hang:
            return "hang"
        if rng.random() < self.drop_rate:
            return "drop"
        if rng.random() < self.drop_after_rate:
            return "drop_after"
        if rng.random() < self.error_rate:
            return "error"
        if rng.random() < self.html500_rate:
            return "html500"
        return None


def _coerce(name: str, raw: object) -> float | bool:
    if name in SWITCH_KNOBS:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0"):
            return raw.lower() in ("true", "1")
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        raise FaultSpecError(f"fault knob {name} must be true or false, got {raw!r}")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FaultSpecError(f"fault knob {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (name in RATE_KNOBS and value > 1):
        limit = "between 0 and 1" if name in RATE_KNOBS else "a finite number, 0 or more"
        raise FaultSpecError(f"fault knob {name} must be {limit}, got {raw!r}")
    return value


def parse_fault_specs(specs: list[str]) -> dict[str, dict[str, str]]:
    """Parse ``service.knob=value`` items (from the command line or ``HCA_SANDBOX_FAULTS``)."""
    parsed: dict[str, dict[str, str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        service, dot, knob = key.strip().partition(".")
        if not sep or not dot or not knob:
            raise FaultSpecError(f"fault setting {spec!r} is not of the form service.knob=value")
        if service not in SERVICES:
            raise FaultSpecError(
                f"fault setting {spec!r}: unknown service (known: {', '.join(SERVICES)})"
            )
        parsed.setdefault(service, {})[knob.strip()] = value.strip()
    return parsed


class FaultBoard:
    """The current faults of every service; safe to read and change from any thread."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = {service: Faults() for service in SERVICES}
        self._rng = random.Random(seed)

    def set(self, service: str, knobs: dict[str, object]) -> Faults:
        if service not in SERVICES:
            raise FaultSpecError(f"unknown service {service!r} (known: {', '.join(SERVICES)})")
        with self._lock:
            self._faults[service] = self._faults[service].updated(knobs)
            return self._faults[service]

    def clear(self) -> None:
        with self._lock:
            self._faults = {service: Faults() for service in SERVICES}

    def current(self, service: str) -> Faults:
        """The faults of ``service`` now (a copy), for background work that consults them."""
        with self._lock:
            return Faults(**asdict(self._faults[service]))

    def snapshot(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return {service: asdict(faults) for service, faults in self._faults.items()}

    def decide(self, service: str) -> tuple[str | None, float]:
        """The fault to apply to one request of ``service`` and the latency to add first."""
        with self._lock:
            faults = self._faults[service]
            return faults.pick(self._rng), faults.latency
