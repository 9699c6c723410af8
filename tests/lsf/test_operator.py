"""LsfFileJobOperator and LsfJobTrigger against the stand-in behind a real sshd."""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from hca_archive.lsf.names import job_name, job_paths
from hca_archive.lsf.outputs import LsfCommandError, parse_bjobs_json, parse_bsub
from hca_archive.orchestration.lsf import operator as operator_module
from hca_archive.orchestration.lsf.trigger import LsfJobTrigger
from hca_archive.plan import PlanError
from tests.lsf.conftest import (
    FAKE_JOB,
    SECRET_VALUES,
    context,
    first_event,
    operator,
    plan_job,
    run_deferred,
    wait_for,
    wake_up,
)

pytestmark = pytest.mark.integration


def defer(op, ctx) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    return deferred.value


def command_lines_until_the_job_runs(limit: float = 30) -> list[str]:
    """Every process command line seen until the fake job is among them."""
    seen: list[str] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                seen.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        if any(str(FAKE_JOB) in line for line in seen):
            return seen
        time.sleep(0.05)
    raise AssertionError("the fake job never appeared in the process list")


def bsub_ids(hpc, name: str) -> list[str]:
    """Ids of the jobs named ``name`` the stand-in knows."""
    result = hpc.run(["bjobs", "-a", "-J", name, "-o", "jobid stat exit_code job_name", "-json"])
    return [job.job_id for job in parse_bjobs_json(result.stdout, result.stderr, 0).jobs]


def submissions(hpc, name: str) -> list[list[str]]:
    return [
        entry["argv"]
        for entry in hpc.command_record()
        if entry["argv"][0] == "bsub" and name in entry["argv"]
    ]


def test_runs_the_job_and_returns_its_result_without_leaking(lsf_quick, hpc_connection):
    hpc = lsf_quick
    job = plan_job("manifest-ok", sleep=1)
    op, ctx = operator(hpc_connection, job), context("ok")
    deferred = defer(op, ctx)
    command_lines = command_lines_until_the_job_runs()
    assert not any(secret in line for line in command_lines for secret in SECRET_VALUES)
    paths = job_paths(str(hpc.work_root), "lsf_test", "t", "ok", 0)
    assert stat.S_IMODE(Path(paths.directory).stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(paths.plan).stat().st_mode) == 0o600

    result = run_deferred(op, deferred, ctx)

    assert (result["succeeded"], result["failed"]) == (1, 0)
    (entry,) = result["jobs"]
    assert entry["status"] == "succeeded"
    assert entry["threads"] == 2  # as many conversion threads as cores requested
    key, step = ctx["ti"].pushed[-1]  # the record the run's report reads
    assert (key, step["state"]) == ("step", "succeeded")
    assert ctx["job_label"].startswith("manifest-ok,")
    assert entry["manifest_id"] == job["manifest_id"]
    assert entry["credentials_mode"] == "0600"
    assert "HCA_AAP_PASSWORD" in entry["credentials_keys"]
    assert not Path(paths.credentials).exists()  # the job deleted it after reading
    assert not Path(paths.scratch(0)).exists()  # inputs and outputs are gone once on DSP
    assert Path(paths.result(0)).exists()  # the durable marker stays
    assert not any(secret in json.dumps(result) for secret in SECRET_VALUES)
    record = json.dumps(hpc.command_record())
    for forbidden in (*SECRET_VALUES, "manifest-ok", "donor 1", "lane=1", "s3://", "submissions/"):
        assert forbidden not in record
    (bsub,) = submissions(hpc, job_name("lsf_test", "t", "ok", 0))
    assert "--credentials-file" in bsub
    long_listing = hpc.run(["bjobs", "-l", deferred.trigger.job_id]).stdout
    assert "run-job --plan" in long_listing
    assert not any(secret in long_listing for secret in SECRET_VALUES)


def test_plan_content_is_never_rendered_as_a_template(hpc_connection):
    job = plan_job("{{ 7 * 7 }}")
    op = operator(hpc_connection, job)
    op.render_template_fields({"ds": "2026-11-29"})
    assert op.batch == [job]
    assert op.batch[0]["manifest_id"].startswith("{{ 7 * 7 }},")


def test_the_cluster_connection_defaults_to_the_environments(hpc, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_HCA_SANDBOX_SSH", hpc.connection_json())
    op = operator(None, plan_job("manifest-default"), environment="sandbox")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context("default"))
    assert deferred.value.trigger.ssh_conn_id == "hca_sandbox_ssh"
    hpc.run(["bkill", deferred.value.trigger.job_id])


def test_the_job_page_is_pushed_for_the_task_link(hpc, monkeypatch):
    portal = "https://lsf.example.org/jobs/{job_id}/detail"
    monkeypatch.setenv("AIRFLOW_CONN_HPC_PORTAL", hpc.connection_json(lsf_job_url=portal))
    ctx, op = context("portal"), operator("hpc_portal", plan_job("manifest-portal"))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    job_id = deferred.value.trigger.job_id
    assert ("file_job_url", f"https://lsf.example.org/jobs/{job_id}/detail") in ctx["ti"].pushed
    hpc.run(["bkill", job_id])


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("files", "../escape.bam", r"files\[0\]\.name: contains '/'"),
        ("files", "x; rm -rf `id`.bam", r"files\[0\]\.name: contains shell metacharacters ; `"),
        ("input", "R1'$(touch pwned)'.fastq.gz", r"inputs\[0\]\.name: contains shell metach"),
        ("manifest_id", "m;sleep=0;$(touch pwned)", r"manifest_id: contains shell metach"),
    ],
    ids=["parent-path-file", "shell-file", "shell-input", "shell-manifest-id"],
)
def test_an_invalid_job_never_reaches_the_cluster(
    lsf_quick, hpc_connection, tmp_path, monkeypatch, field, value, problem
):
    monkeypatch.chdir(tmp_path)  # where a shell running ``touch pwned`` would leave its file
    job = plan_job("manifest-invalid")
    if field == "files":
        job["files"] = [{"name": value}]
        job["conversion"]["output_name"] = value
    elif field == "input":
        job["conversion"]["inputs"][0]["name"] = value
    else:
        job["manifest_id"] = value
    commands_before = len(lsf_quick.command_record())
    with pytest.raises(PlanError, match=rf"job 0 \(manifest .*\): .*{problem}"):
        operator(hpc_connection, job).execute(context("invalid"))
    assert len(lsf_quick.command_record()) == commands_before
    assert not list(tmp_path.rglob("pwned*"))
    assert not list(Path(lsf_quick.work_root).rglob("pwned*"))


def test_credentials_with_unknown_keys_are_refused_without_showing_values(
    lsf_quick, hpc_connection
):
    op = operator(hpc_connection, plan_job("manifest-creds"))
    op.credentials = lambda environment: {"HCA_AAP_PASSWORD": "pw-Zq7-very-secret", "TOKEN": "t0k"}
    with pytest.raises(ValueError, match="environment 'test': unknown keys TOKEN") as refused:
        op.execute(context("creds"))
    assert "pw-Zq7" not in str(refused.value)
    assert "t0k" not in str(refused.value)
    assert submissions(lsf_quick, job_name("lsf_test", "t", "creds", 0)) == []


def test_credentials_staged_for_a_job_are_masked_in_the_task_log():
    """The job's stdout and stderr tails go to the task log: a password a job printed there
    (or a line quoting the staged file) shows as ***, even one no Airflow connection holds."""
    from airflow.sdk.log import _secrets_masker

    staged = operator_module._credentials_file(
        {"HCA_AAP_PASSWORD": "pw-staged-mask-0005", "HCA_AAP_USERNAME": "archiver"}, "test"
    )
    assert staged["HCA_AAP_PASSWORD"] == "pw-staged-mask-0005"
    assert "pw-staged-mask-0005" not in _secrets_masker().redact("login pw-staged-mask-0005")


def test_memory_follows_the_input_size(lsf_quick, hpc_connection):
    op = operator(hpc_connection, plan_job("manifest-mem"), input_bytes=10 * 2**30)
    defer(op, context("mem"))
    (argv,) = submissions(lsf_quick, job_name("lsf_test", "t", "mem", 0))
    assert argv[argv.index("-M") + 1] == "4736"
    assert "rusage[mem=4736]" in argv


def test_a_crashed_job_fails_the_task_with_the_lsf_reason(lsf_quick, hpc_connection):
    op, ctx = operator(hpc_connection, plan_job("manifest-crash", status="crash")), context("crash")
    deferred = defer(op, ctx)
    job_id = deferred.trigger.job_id
    with pytest.raises(AirflowException, match=f"LSF job {job_id} EXIT code 3: the job command"):
        run_deferred(op, deferred, ctx)


def test_a_job_that_cannot_start_fails_clearly_and_leaves_no_credentials(lsf_quick, hpc_connection):
    job, ctx = plan_job("manifest-nostart"), context("nostart")
    op = operator(hpc_connection, job, command_prefix="/nonexistent/hca-archive")
    deferred = defer(op, ctx)
    with pytest.raises(AirflowException, match="EXIT code 127: the job command was not found"):
        run_deferred(op, deferred, ctx)
    paths = job_paths(str(lsf_quick.work_root), "lsf_test", "t", "nostart", 0)
    assert not Path(paths.credentials).exists()


def test_a_failed_job_reports_its_own_error(lsf_quick, hpc_connection):
    op, ctx = operator(hpc_connection, plan_job("manifest-fail", status="failed")), context("fail")
    with pytest.raises(
        AirflowException,
        match=r"EXIT code 1: .*; manifest-fail/fake: fake failure of manifest-fail",
    ):
        run_deferred(op, defer(op, ctx), ctx)


def test_a_batch_runs_in_one_lsf_job_and_reports_every_job(lsf_quick, hpc_connection):
    batch = [plan_job(f"manifest-batch{index}") for index in range(3)]
    op, ctx = operator(hpc_connection, None, batch=batch), context("batch")
    result = run_deferred(op, defer(op, ctx), ctx)
    assert [job["manifest_id"] for job in result["jobs"]] == [job["manifest_id"] for job in batch]
    assert (result["succeeded"], result["failed"]) == (3, 0)
    assert len(submissions(lsf_quick, job_name("lsf_test", "t", "batch", 0))) == 1
    assert ctx["job_label"].endswith("(+2 more jobs)")


def test_a_batch_with_a_crash_names_the_jobs_left_without_result(lsf_quick, hpc_connection):
    batch = [plan_job("manifest-first"), plan_job("manifest-second", status="crash")]
    op, ctx = operator(hpc_connection, None, batch=batch), context("batch-crash")
    deferred = defer(op, ctx)
    with pytest.raises(AirflowException, match="EXIT code 3") as failure:
        run_deferred(op, deferred, ctx)
    assert "no result" not in str(failure.value)  # only errors the jobs reported themselves
    paths = job_paths(str(lsf_quick.work_root), "lsf_test", "t", "batch-crash", 0)
    assert Path(paths.result(0)).exists()
    assert not Path(paths.result(1)).exists()
    assert Path(paths.scratch(1)).exists()  # a failed batch keeps its files
    assert ctx["ti"].pushed[-1][1]["state"] == "failed"


def test_a_refused_submission_leaves_no_credentials(lsf_quick, hpc_connection):
    """bsub refused the job (here: a queue the cluster does not have), so no job will ever read
    and delete the credentials file: the task must, and say why LSF refused."""
    op = operator(hpc_connection, plan_job("manifest-noqueue"), lsf_queue="nosuch")
    ctx = context("noqueue")
    with pytest.raises(LsfCommandError, match=r"exit 255\): nosuch: No such queue"):
        op.execute(ctx)
    paths = job_paths(str(lsf_quick.work_root), "lsf_test", "t", "noqueue", 0)
    assert Path(paths.plan).exists()  # staged: the bsub really ran and was refused
    assert not Path(paths.credentials).exists()


def test_a_second_execute_adopts_the_job_instead_of_submitting_again(lsf_quick, hpc_connection):
    hpc = lsf_quick
    job, ctx = plan_job("manifest-adopt", sleep=2), context("adopt")
    first = defer(operator(hpc_connection, job), ctx)
    second = defer(operator(hpc_connection, job), ctx)  # a retry or a restarted worker
    assert second.trigger.job_id == first.trigger.job_id
    result = run_deferred(operator(hpc_connection, job), second, ctx)
    assert result["jobs"][0]["status"] == "succeeded"
    assert operator(hpc_connection, job).execute(ctx) == result  # DONE: adopted, not rerun
    assert len(submissions(hpc, job_name("lsf_test", "t", "adopt", 0))) == 1


def test_a_concurrent_duplicate_submission_is_killed(lsf_quick, hpc_connection, monkeypatch):
    hpc = lsf_quick
    name = job_name("lsf_test", "t", "race", 0)
    first = hpc.run(["bsub", "-J", name, "sleep", "30"])  # the other worker's submission
    first_id = parse_bsub(first.stdout, first.stderr, first.returncode).job_id
    # Our lookup ran just before that submission became visible:
    monkeypatch.setattr(operator_module, "_pick_existing", lambda jobs: None)
    op, ctx = operator(hpc_connection, plan_job("manifest-race", sleep=30)), context("race")
    assert defer(op, ctx).trigger.job_id == first_id
    (ours,) = set(bsub_ids(hpc, name)) - {first_id}
    paths = job_paths(str(hpc.work_root), "lsf_test", "t", "race", 0)
    trigger = LsfJobTrigger(hpc_connection, ours, name, paths.directory, poll_interval=0.3)
    event = asyncio.run(first_event(trigger))
    assert (event["stat"], event["exit_code"]) == ("EXIT", 130)
    hpc.run(["bkill", first_id])


def test_a_retry_after_exit_submits_again(lsf_quick, hpc_connection):
    hpc = lsf_quick
    job, ctx = plan_job("manifest-retry", status="crash"), context("retry")
    op = operator(hpc_connection, job)
    with pytest.raises(AirflowException, match="EXIT code 3"):
        run_deferred(op, defer(op, ctx), ctx)
    retry = defer(operator(hpc_connection, job), ctx)
    assert len(submissions(hpc, job_name("lsf_test", "t", "retry", 0))) == 2
    with pytest.raises(AirflowException, match=f"LSF job {retry.trigger.job_id} EXIT"):
        run_deferred(op, retry, ctx)


def test_the_result_file_is_the_truth_once_lsf_forgot_the_job(lsf_quick, hpc_connection):
    hpc = lsf_quick
    job, ctx = plan_job("manifest-clean", sleep=0.2), context("clean")
    op = operator(hpc_connection, job)
    deferred = defer(op, ctx)
    asyncio.run(first_event(deferred.trigger))
    hpc.configure_lsf(clean_period=0)
    result = op.execute_complete(ctx, wake_up(deferred.trigger))
    assert result["jobs"][0]["status"] == "succeeded"
    assert operator(hpc_connection, job).execute(ctx) == result
    assert len(submissions(hpc, job_name("lsf_test", "t", "clean", 0))) == 1


def test_lsf_forgetting_a_job_without_result_fails_clearly(lsf_quick, hpc_connection):
    hpc = lsf_quick
    op, ctx = operator(hpc_connection, plan_job("manifest-gone", status="crash")), context("gone")
    deferred = defer(op, ctx)
    asyncio.run(first_event(deferred.trigger))
    hpc.configure_lsf(clean_period=0)
    with pytest.raises(AirflowException, match="no longer known to LSF but left no result file"):
        op.execute_complete(ctx, wake_up(deferred.trigger))


def test_results_of_another_batch_in_the_directory_are_not_taken(lsf_quick, hpc_connection):
    """A run cleared after its upload plan changed: same task, same directory, other jobs."""
    hpc = lsf_quick
    ctx = context("replanned")
    old = operator(hpc_connection, plan_job("manifest-old"))
    assert run_deferred(old, defer(old, ctx), ctx)["succeeded"] == 1
    new = operator(hpc_connection, plan_job("manifest-new"))
    result = run_deferred(new, defer(new, ctx), ctx)
    assert result["jobs"][0]["manifest_id"].startswith("manifest-new")
    assert len(submissions(hpc, job_name("lsf_test", "t", "replanned", 0))) == 2


def test_a_failure_after_a_replan_is_retried_not_hidden_by_the_old_done_job(
    lsf_quick, hpc_connection
):
    """The old batch's job is DONE, the new batch's EXIT: a retry submits the new batch again
    (adopting the DONE job would read the new batch's results as its own, every retry)."""
    hpc, ctx = lsf_quick, context("replan-fail")
    old = operator(hpc_connection, plan_job("manifest-old"))
    assert run_deferred(old, defer(old, ctx), ctx)["succeeded"] == 1
    new_job = plan_job("manifest-new", status="crash")
    new = operator(hpc_connection, new_job)
    with pytest.raises(AirflowException, match="EXIT code 3"):
        run_deferred(new, defer(new, ctx), ctx)
    defer(operator(hpc_connection, new_job), ctx)  # the retry: submits, then waits
    assert len(submissions(hpc, job_name("lsf_test", "t", "replan-fail", 0))) == 3


def test_a_retry_after_a_refused_submission_of_a_new_batch_does_not_adopt_the_old_job(
    lsf_quick, hpc_connection
):
    """After a re-plan the new batch is staged but bsub refuses it (a queue typo, fixed before
    the retry). The old batch's DONE job is the only one named so; the staged plan is the new
    batch's now, so it looks like this batch's job: adopted, it failed every retry with "DONE
    but left no result file" until LSF forgot it, an hour later."""
    hpc, ctx = lsf_quick, context("replan-refused")
    old = operator(hpc_connection, plan_job("manifest-old"))
    assert run_deferred(old, defer(old, ctx), ctx)["succeeded"] == 1
    new_job = plan_job("manifest-new")
    with pytest.raises(LsfCommandError, match="No such queue"):
        operator(hpc_connection, new_job, lsf_queue="nosuch").execute(ctx)
    retry = operator(hpc_connection, new_job)
    result = run_deferred(retry, defer(retry, ctx), ctx)
    assert result["jobs"][0]["manifest_id"].startswith("manifest-new")
    assert len(submissions(hpc, job_name("lsf_test", "t", "replan-refused", 0))) == 3


def test_results_a_job_left_beside_a_newer_failed_twin_are_taken(lsf_quick, hpc_connection):
    """A twin of the job (a second worker's submission, killed) ended in EXIT after the job
    itself finished: its successful results stand, nothing is submitted again."""
    hpc, ctx = lsf_quick, context("twin")
    job = plan_job("manifest-twin")
    op = operator(hpc_connection, job)
    result = run_deferred(op, defer(op, ctx), ctx)
    name = job_name("lsf_test", "t", "twin", 0)
    twin = hpc.run(["bsub", "-J", name, "false"])
    wait_for(hpc, parse_bsub(twin.stdout, twin.stderr, twin.returncode).job_id, {"EXIT"})
    assert operator(hpc_connection, job).execute(ctx) == result
    assert len(submissions(hpc, name)) == 2  # ours and the twin


def test_a_running_job_of_another_batch_is_ended_before_the_new_one(lsf_quick, hpc_connection):
    hpc = lsf_quick
    ctx = context("replanned-running")
    old = operator(hpc_connection, plan_job("manifest-old", sleep=60))
    old_job = defer(old, ctx).trigger.job_id
    new = operator(hpc_connection, plan_job("manifest-new"))
    deferred = defer(new, ctx)
    assert deferred.trigger.job_id != old_job
    states = parse_bjobs_json(
        hpc.run(["bjobs", "-o", "jobid stat", "-json", old_job]).stdout, "", 0
    )
    assert not states.by_id()[old_job].active
    assert run_deferred(new, deferred, ctx)["jobs"][0]["manifest_id"].startswith("manifest-new")


def test_killing_the_task_kills_the_job(lsf_quick, hpc_connection):
    op, ctx = operator(hpc_connection, plan_job("manifest-kill", sleep=60)), context("kill")
    deferred = defer(op, ctx)
    op.on_kill()
    with pytest.raises(AirflowException, match=r"EXIT code 130: interrupted by SIGINT"):
        run_deferred(op, deferred, ctx)


def test_a_job_that_does_not_end_is_killed_at_the_wait_timeout(lsf_quick, hpc_connection):
    op = operator(
        hpc_connection,
        plan_job("manifest-stuck", sleep=600),
        wait_timeout=timedelta(seconds=3),
    )
    ctx = context("stuck")
    deferred = defer(op, ctx)
    with pytest.raises(AirflowFailException, match=r"still RUN after 0:00:03: killed it"):
        run_deferred(op, deferred, ctx)
    assert wait_for(lsf_quick, deferred.trigger.job_id, {"EXIT"}).stat == "EXIT"


def test_a_job_stopped_while_pending_leaves_no_credentials(lsf_quick, hpc_connection):
    """A pending job never reads (and so never deletes) its credentials file: whoever stops it
    must - the wait's timeout, the task's kill and the trigger's kill."""
    lsf_quick.configure_lsf(pend_seconds=60)
    for run in ("pend-timeout", "pend-kill", "pend-tkill"):
        op = operator(
            hpc_connection, plan_job(f"manifest-{run}"), wait_timeout=timedelta(seconds=2)
        )
        ctx = context(run)
        deferred = defer(op, ctx)
        credentials = Path(job_paths(str(lsf_quick.work_root), "lsf_test", "t", run, 0).credentials)
        assert credentials.exists()
        if run == "pend-timeout":
            with pytest.raises(AirflowFailException, match="still PEND after 0:00:02: killed"):
                run_deferred(op, deferred, ctx)
        elif run == "pend-kill":
            op.on_kill()
        else:
            asyncio.run(deferred.trigger.on_kill())
        assert not credentials.exists(), run


def test_killing_the_deferred_task_kills_the_job_from_the_trigger(lsf_quick, hpc_connection):
    op, ctx = operator(hpc_connection, plan_job("manifest-tkill", sleep=60)), context("tkill")
    deferred = defer(op, ctx)
    asyncio.run(deferred.trigger.on_kill())
    event = asyncio.run(first_event(deferred.trigger))
    assert (event["stat"], event["exit_code"]) == ("EXIT", 130)


def test_waiting_jobs_share_one_connection_and_one_bjobs_per_poll(lsf_quick, hpc_connection):
    hpc = lsf_quick
    job = plan_job("manifest-many", sleep=2)
    ops = [operator(hpc_connection, job) for _ in range(20)]
    with ThreadPoolExecutor(4) as pool:  # workers submit side by side
        deferrals = list(
            pool.map(lambda index: defer(ops[index], context("many", index)), range(20))
        )
    job_ids = {deferred.trigger.job_id for deferred in deferrals}
    assert len(job_ids) == 20
    connections_before, commands_before = hpc.accepted_connections(), len(hpc.command_record())

    async def wait_all() -> list[dict]:
        return await asyncio.gather(*(first_event(d.trigger) for d in deferrals))

    events = asyncio.run(wait_all())

    assert {event["stat"] for event in events} == {"DONE"}
    assert hpc.accepted_connections() - connections_before == 1
    polls = [entry["argv"] for entry in hpc.command_record()[commands_before:]]
    assert all(argv[0] == "bjobs" for argv in polls)
    assert set(polls[0][-20:]) == job_ids  # the first poll asks for all 20 at once
    appearances = [sum(job_id in argv for argv in polls) for job_id in job_ids]
    assert len(polls) == max(appearances)  # one bjobs per poll, never one per job

    def resume(index: int) -> dict:
        return ops[index].execute_complete(context("many", index), events[index])

    with ThreadPoolExecutor(4) as pool:
        assert [result["succeeded"] for result in pool.map(resume, range(20))] == [1] * 20
