"""Private sandbox + Airflow standalone stacks for the reliability tests, and what they check.

Each test module starts its own stack (faults and crashes must not disturb other tests), keeps it
for the whole module, and can restart Airflow on the same AIRFLOW_HOME (same SQLite database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hca_archive.devstack.airflow_standalone import AirflowStandalone
from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.sandbox.process import SandboxInfo, start_sandbox
from tests.fixtures.airflow import DAG_ID, AirflowStack


@contextmanager
def private_stack(
    sandbox_dir: Path,
    airflow_home: Path,
    *sandbox_options: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[AirflowStack]:
    """A sandbox started with ``sandbox_options`` and an Airflow standalone wired to it."""
    with start_sandbox(sandbox_dir, *sandbox_options) as sandbox:
        env = {
            **sandbox_connections(sandbox.endpoints),
            "HCA_ARCHIVE_SWEEP_SCHEDULE": "none",  # only the runs a test starts
            **(extra_env or {}),
        }
        standalone = AirflowStandalone(airflow_home, env)
        stack = AirflowStack(standalone, standalone.start(), sandbox)
        try:
            stack.api.wait_for_dag(DAG_ID)
            yield stack
        finally:
            stack.standalone.stop()


def restart_airflow(stack: AirflowStack) -> None:
    """Stop every Airflow process and start a new standalone on the same home and settings."""
    old = stack.standalone
    old.stop()
    stack.standalone = AirflowStandalone(old.home, old.extra_env, old.port)
    stack.api = stack.standalone.start()
    stack.api.wait_for_dag(DAG_ID)


def assert_archived_once(
    sandbox: SandboxInfo, submission_uuid: str, *, empty_orphans: bool = False
) -> dict[str, Any]:
    """One DSP submission, Completed, the envelope Archived, each planned file uploaded once and
    checked by DSP (a checked file has the right md5: the sandbox compares it with the seed).

    ``empty_orphans``: also accept extra tus uploads of a file that never got a byte. A creation
    whose answer is lost (``drop_after_rate``) leaves one: tus has no way to find it again.
    """
    summary = sandbox.submission_summary(submission_uuid)
    assert len(summary["dsp_submissions"]) == 1, summary["dsp_submissions"]
    (dsp,) = summary["dsp_submissions"]
    assert dsp["status"] == "Completed", dsp
    assert dsp["complete_requests"] == 1, dsp  # the archiver's complete is not idempotent
    assert summary["envelope_state"] == "Archived", summary
    assert dsp["files"], dsp
    for file in dsp["files"]:
        assert file["planned"], file
        assert file["state"] == "ready", file
        assert file["md5"], file
        if empty_orphans:
            assert file["uploads_completed"] == 1, file
            assert file["bytes_received"] == file["bytes"], file
        else:
            assert file["uploaded_exactly_once"], file
    return dsp
