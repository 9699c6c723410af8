"""DAG integrity: every DAG file imports cleanly, without I/O, and is configured as promised."""

from __future__ import annotations

import copy
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError

from hca_archive.orchestration.archive_dag import build_archive_dag
from hca_archive.orchestration.report import STEPS

DAGS = Path(__file__).resolve().parents[2] / "dags"
# Every step of the run talks to a service, but for the branch choice and the report.
NETWORK_TASKS = set(STEPS)


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module: pytest.MonkeyPatch) -> DagBag:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a DAG file opened a network connection while being parsed")

    monkeypatch_module.setattr(socket.socket, "connect", refuse)
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert "archive_submission" in dagbag.dags


def test_a_bad_sweep_schedule_is_an_import_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the DAG list shows the deployer: which variable, its value and what would do."""
    monkeypatch.setenv("HCA_ARCHIVE_SWEEP_SCHEDULE_STAGING", "*/15 * * *")
    errors = DagBag(dag_folder=str(DAGS / "archive_sweep.py")).import_errors
    assert len(errors) == 1
    (error,) = errors.values()
    assert "HCA_ARCHIVE_SWEEP_SCHEDULE_STAGING='*/15 * * *': not a cron expression" in error
    assert "expected a cron expression" in error and "none, off or empty" in error


def test_every_dag_is_tagged_and_owned(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert "hca" in dag.tags, dag_id
        assert all(task.owner != "airflow" for task in dag.tasks), dag_id


def test_network_tasks_retry_with_backoff(dagbag: DagBag) -> None:
    dag = dagbag.dags["archive_submission"]
    for task_id in NETWORK_TASKS:
        task = dag.get_task(task_id)
        assert task.retries >= 2, task_id
    for task_id in NETWORK_TASKS - {"run_local", "run_lsf", "run_kubernetes"}:
        assert dag.get_task(task_id).retry_exponential_backoff, task_id


def test_file_job_retry_delay_is_a_minute_unless_the_environment_says(
    dagbag: DagBag, monkeypatch: pytest.MonkeyPatch
) -> None:
    for task_id in ("run_local", "run_lsf", "run_kubernetes"):
        assert dagbag.dags["archive_submission"].get_task(task_id).retry_delay == timedelta(
            minutes=1
        )
    monkeypatch.setenv("HCA_ARCHIVE_FILE_JOB_RETRY_DELAY_SECONDS", "5")
    shortened = build_archive_dag()
    for task_id in ("run_local", "run_lsf", "run_kubernetes"):
        assert shortened.get_task(task_id).retry_delay == timedelta(seconds=5)
    monkeypatch.setenv("HCA_ARCHIVE_FILE_JOB_RETRY_DELAY_SECONDS", "soon")
    with pytest.raises(
        ValueError, match="HCA_ARCHIVE_FILE_JOB_RETRY_DELAY_SECONDS must be a number"
    ):
        build_archive_dag()


def test_the_archive_dag_is_active_from_the_start_and_only_runs_when_triggered(
    dagbag: DagBag,
) -> None:
    """Deployments pause new DAGs by default (the compose file too): a paused archive DAG would
    hold every triggered run and fail the sweeps' trigger tasks."""
    dag = dagbag.dags["archive_submission"]
    assert dag.is_paused_upon_creation is False
    assert type(dag.timetable).__name__ == "NullTimetable"  # no schedule of its own


def test_report_runs_whatever_happened(dagbag: DagBag) -> None:
    dag = dagbag.dags["archive_submission"]
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("report").retries >= 2  # an unanswered XCom push must not fail the run
    assert dag.get_task("wait_for_validation").trigger_rule == "none_failed_min_one_success"


def test_file_jobs_are_mapped_and_labelled(dagbag: DagBag) -> None:
    run_local = dagbag.dags["archive_submission"].get_task("run_local")
    assert run_local.map_index_template == "{{ job_label }}"


def test_a_kubernetes_file_job_has_the_time_limit_its_pod_has(dagbag: DagBag) -> None:
    from hca_archive.orchestration.file_job_results import FILE_JOB_TIME_LIMIT

    task = dagbag.dags["archive_submission"].get_task("run_kubernetes")
    assert task.execution_timeout == FILE_JOB_TIME_LIMIT  # the pod's activeDeadlineSeconds


def test_a_local_file_job_has_the_time_limit_lsf_and_kubernetes_jobs_have(dagbag: DagBag) -> None:
    """Without one, a local job that hangs (a stalled download) holds its worker slot for ever."""
    from hca_archive.orchestration.file_job_results import FILE_JOB_TIME_LIMIT

    task = dagbag.dags["archive_submission"].get_task("run_local")
    assert task.execution_timeout == FILE_JOB_TIME_LIMIT


def _params(dagbag: DagBag, **values: object) -> dict:
    params = copy.deepcopy(dagbag.dags["archive_submission"].params)
    for key, value in values.items():
        params[key] = value
    return params.validate()


def test_params_accept_a_submission_uuid(dagbag: DagBag) -> None:
    params = _params(dagbag, submission_uuid="2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10")
    assert params["environment"] == "sandbox"
    assert params["runner"] == "local"
    assert params["alias_prefix"] == "HCA"
    assert params["dry_run"] is False


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"submission_uuid": "not-a-uuid"},
        {"submission_uuid": "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10; rm -rf /"},
        {"submission_uuid": "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10", "environment": "qa"},
        {"submission_uuid": "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10", "runner": "slurm"},
        {"submission_uuid": "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10", "alias_prefix": "a b"},
    ],
)
def test_params_refuse_bad_input(dagbag: DagBag, values: dict) -> None:
    with pytest.raises(ParamValidationError):
        _params(dagbag, **values)


def test_every_param_is_explained(dagbag: DagBag) -> None:
    params = dagbag.dags["archive_submission"].params
    for name in params:
        param = params.get_param(name)
        assert param.description and param.schema.get("title"), name


def test_a_run_refuses_a_parameter_the_dag_does_not_have(dagbag: DagBag) -> None:
    """Airflow keeps a misspelt name in the conf (the REST API, the form's JSON) and ignores it:
    ``{"runer": "lsf"}`` archived on the Airflow worker instead of the cluster, unannounced."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from hca_archive.orchestration.archive_dag import check_submission

    pushed: dict[str, object] = {}
    ti = SimpleNamespace(try_number=1, xcom_push=lambda key, value: pushed.update({key: value}))
    params = _params(dagbag, submission_uuid="2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10")
    conf = {"submission_uuid": params["submission_uuid"], "runer": "lsf"}
    context = {"ti": ti, "params": params, "dag_run": SimpleNamespace(conf=conf)}
    with pytest.raises(AirflowFailException, match="unknown parameter runer; known: alias_prefix"):
        check_submission.function(**context)
    assert pushed["step"]["state"] == "failed"


class _RequestResult:
    """What a task instance reads of ``request_archive``'s return value."""

    def __init__(self, value: object) -> None:
        self.value, self.pushed, self.try_number = value, {}, 1

    def xcom_pull(self, task_ids: str) -> object:
        assert task_ids == "request_archive"
        return self.value

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize(
    "task_id", ["check_metadata", "wait_for_validation", "wait_for_completion"]
)
def test_the_waits_render_the_requested_dsp_submission(dagbag: DagBag, task_id: str) -> None:
    dag = dagbag.dags["archive_submission"]
    template = dag.get_task(task_id).arguments["dsp_uuid"]
    render = dag.get_template_env().from_string(template).render
    assert render(ti=_RequestResult({"dsp_uuid": "b729f228-0000"})) == "b729f228-0000"


def test_the_completion_wait_notes_a_stop_where_complete_submission_reads_it(
    dagbag: DagBag,
) -> None:
    from hca_archive.orchestration.archive_dag import writeback_note

    task = copy.deepcopy(dagbag.dags["archive_submission"].get_task("wait_for_completion"))
    # rendered by Airflow as it runs the task: only template fields are
    task.render_template_fields(
        {"ti": _RequestResult({"dsp_uuid": "b729f228-0000"}), "params": {"environment": "dev"}}
    )
    assert task.stuck_note == writeback_note("dev", "b729f228-0000")


@pytest.mark.parametrize("result", [None, {}, {"dsp_uuid": ""}])
def test_a_request_marked_success_by_hand_is_named_not_a_template_error(
    dagbag: DagBag, result: object
) -> None:
    """Marked success by hand, request_archive returns nothing: every later step said only
    "'None' has no attribute 'dsp_uuid'"."""
    from airflow.sdk.exceptions import AirflowFailException

    from hca_archive.orchestration.archive_dag import complete_submission, fetch_plan

    dag = dagbag.dags["archive_submission"]
    template = dag.get_task("check_metadata").arguments["dsp_uuid"]
    expected = "request_archive left no DSP submission .*marked success by hand.*clear"
    with pytest.raises(AirflowFailException, match=expected):
        dag.get_template_env().from_string(template).render(ti=_RequestResult(result))
    params = _params(dagbag, submission_uuid="2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10")
    for step in (fetch_plan, complete_submission):
        ti = _RequestResult(result)
        with pytest.raises(AirflowFailException, match=expected):
            step.function(ti=ti, params=params)
        assert ti.pushed["step"]["state"] == "failed"  # the report names the step and why
