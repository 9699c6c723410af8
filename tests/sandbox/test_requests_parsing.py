"""Parsing of seed requests and fault settings: bad input is refused with a clear message."""

from __future__ import annotations

import pytest

from hca_archive.sandbox.faults import FaultBoard, FaultSpecError, parse_fault_specs
from hca_archive.sandbox.seeding import DEFAULT_JOBS, SeedError, SeedRequest


def test_seed_request_defaults_and_many_jobs() -> None:
    assert SeedRequest.from_json({}) == SeedRequest(1, DEFAULT_JOBS, 2000)
    many = SeedRequest.from_json({"count": 2, "jobs": ["plain"] * 100, "reads": 5})
    assert (many.count, len(many.jobs), many.reads) == (2, 100, 5)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ([], "JSON object"),
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"reads": "many"}, "reads"),
        ({"jobs": []}, "jobs"),
        ({"jobs": ["10xV9"]}, "10xV9"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_seed_requests(body: object, named: str) -> None:
    with pytest.raises(SeedError, match=named):
        SeedRequest.from_json(body)


def test_fault_specs() -> None:
    assert parse_fault_specs(["dsp.error_rate=0.5", "dsp.hang=true", "aap.latency=2"]) == {
        "dsp": {"error_rate": "0.5", "hang": "true"},
        "aap": {"latency": "2"},
    }
    board = FaultBoard(seed=1)
    board.set("dsp", {"error_rate": "1", "hang": "false"})
    assert board.snapshot()["dsp"]["error_rate"] == 1.0
    assert board.decide("dsp") == ("error", 0.0)
    assert board.decide("archiver") == (None, 0.0)


@pytest.mark.parametrize(
    ("spec", "named"),
    [("dsp.error_rate", "service.knob=value"), ("s3.error_rate=1", "unknown service")],
)
def test_bad_fault_specs(spec: str, named: str) -> None:
    with pytest.raises(FaultSpecError, match=named):
        parse_fault_specs([spec])


@pytest.mark.parametrize(
    ("knobs", "named"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"latency": -1}, "latency"),
        ({"hang": "maybe"}, "hang"),
        ({"error_rate": "nan"}, "error_rate"),  # compares false with every bound
        ({"latency": "inf"}, "latency"),  # time.sleep(inf) raises in the request handler
        ({"latency": float("nan")}, "latency"),
    ],
)
def test_bad_fault_values(knobs: dict[str, object], named: str) -> None:
    with pytest.raises(FaultSpecError, match=named):
        FaultBoard().set("dsp", knobs)
