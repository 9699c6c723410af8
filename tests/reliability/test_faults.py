"""Faulty services: errors, HTML 500 pages, latency, dropped connections and hangs on every
service, and the runs still archive each submission exactly once.

One private sandbox (faults from its command line) and one private Airflow for the module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from hca_archive.clients.airflow_api import AirflowApi
from tests.fixtures.airflow import DAG_ID, AirflowStack
from tests.reliability.stacks import assert_archived_once, private_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ("archiver", "ingest", "dsp", "aap")
# 10% JSON 503 and 10% HTML 500 (about 20% of calls answered with an error), 2 s before every
# answer, 3% of requests dropped unseen and 3% dropped after the service acted on them.
FAULTS = {
    "error_rate": 0.1,
    "html500_rate": 0.1,
    "latency": 2,
    "drop_rate": 0.03,
    "drop_after_rate": 0.03,
}
SUBMISSIONS = 5
FAULTY_RUN_TIMEOUT = 1500


@pytest.fixture(scope="module")
def faulty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    options = [
        option
        for service in SERVICES
        for knob, value in FAULTS.items()
        for option in ("--fault", f"{service}.{knob}={value}")
    ]
    with private_stack(
        tmp_path_factory.mktemp("faulty-sandbox"),
        tmp_path_factory.mktemp("faulty-airflow"),
        *options,
    ) as stack:
        yield stack


def wait_for_runs(api: AirflowApi, run_ids: list[str], timeout: float) -> dict[str, dict]:
    return {run_id: api.wait_for_run(DAG_ID, run_id, timeout) for run_id in run_ids}


def test_five_submissions_are_archived_exactly_once_through_faults(
    faulty_stack: AirflowStack,
) -> None:
    sandbox = faulty_stack.sandbox
    submissions = sandbox.seed(count=SUBMISSIONS, jobs=["10xV2", "plain"], reads=100)
    run_ids = [faulty_stack.api.trigger(DAG_ID, {"submission_uuid": uuid}) for uuid in submissions]
    runs = wait_for_runs(faulty_stack.api, run_ids, FAULTY_RUN_TIMEOUT)
    for run_id, run in runs.items():
        assert run["state"] == "success", (run_id, faulty_stack.states(run_id))
    orphans = 0
    for uuid in submissions:
        dsp = assert_archived_once(sandbox, uuid, empty_orphans=True)
        assert len(dsp["files"]) == 2
        orphans += sum(file["uploads_created"] - 1 for file in dsp["files"])
    served = sandbox.log_path.read_text()
    errors, pages = served.count('" 503 '), served.count('" 500 ')
    assert errors and pages  # the faults did hit the runs
    print(f"faulted answers: {errors} JSON 503, {pages} HTML 500; empty orphan uploads: {orphans}")


def test_a_hung_service_delays_the_run_but_never_blocks_it(faulty_stack: AirflowStack) -> None:
    """The archiver accepts connections and never answers when the run asks it for the DSP
    submission: the call times out (60 s), is retried, and once the hang is cleared the run
    completes with one DSP submission."""
    sandbox = faulty_stack.sandbox
    sandbox.clear_faults()
    (uuid,) = sandbox.seed(jobs=["plain"], reads=50)
    sandbox.set_faults("archiver", hang=True)
    run_id = faulty_stack.api.trigger(DAG_ID, {"submission_uuid": uuid})
    hung = f"archiver: hanging GET /latestArchiveSubmission/{uuid}"
    deadline = time.monotonic() + 300
    while hung not in sandbox.log_path.read_text():
        assert time.monotonic() < deadline, faulty_stack.states(run_id)
        time.sleep(1)
    assert faulty_stack.states(run_id)["request_archive"] == ["running"]
    sandbox.clear_faults()  # the hung call stays hung: only its timeout frees the task
    run = faulty_stack.api.wait_for_run(DAG_ID, run_id, FAULTY_RUN_TIMEOUT)
    assert run["state"] == "success", faulty_stack.states(run_id)
    assert "ReadTimeout" in faulty_stack.task_log(run_id, "request_archive")
    assert_archived_once(sandbox, uuid)
