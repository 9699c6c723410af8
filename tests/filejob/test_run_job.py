"""``hca-archive run-job`` as a subprocess against the sandbox (DSP with tus, AAP, moto S3)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.sandbox import SandboxInfo, start_sandbox
from tests.sandbox.helpers import trigger_and_wait, tus_offset, wait_for

pytestmark = pytest.mark.integration

HCA_ARCHIVE = Path(sys.executable).with_name("hca-archive")
SECRET_VARIABLES = ("HCA_AAP_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")


def archive_plan(sandbox: SandboxInfo, tmp_path: Path, kinds: list[str], reads: int = 300):
    """Seed one ingest submission, trigger archiving, write its upload plan to a file."""
    (submission,) = sandbox.seed(1, jobs=kinds, reads=reads)
    record = trigger_and_wait(sandbox, submission)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps({"jobs": record["fileUploadPlan"]}))
    return submission, record["fileUploadPlan"], plan_path


def job_environment(
    sandbox_env: dict[str, str], *, without: tuple[str, ...] = ()
) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if key not in sandbox_env}
    return {**inherited, **{k: v for k, v in sandbox_env.items() if k not in without}}


def run_job(
    sandbox: SandboxInfo, env: dict[str, str], plan: Path, workdir: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    command = [str(HCA_ARCHIVE), "run-job", "--plan", str(plan), "--workdir", str(workdir)]
    finished = subprocess.run(
        [*command, *options], env=env, capture_output=True, text=True, timeout=300
    )
    assert_no_secrets(sandbox, finished.stdout + finished.stderr)
    return finished


def assert_no_secrets(sandbox: SandboxInfo, output: str) -> None:
    for secret in (sandbox.aap_password, sandbox.aws_secret_access_key):
        assert secret not in output
    assert "eyJ" not in output  # the start of every JWT (base64 of '{"')


def uploaded_files(sandbox: SandboxInfo, submission: str, names: list[str]) -> dict[str, Any]:
    """The DSP files of the submission once each named one has been uploaded and checked."""

    def checked() -> dict[str, Any] | None:
        (dsp_submission,) = sandbox.submission_summary(submission)["dsp_submissions"]
        files = {file["name"]: file for file in dsp_submission["files"]}
        return files if all(files.get(name, {}).get("md5") for name in names) else None

    return wait_for("DSP's check of the uploaded files", checked)


def result_of(finished: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(finished.stdout)


@pytest.mark.parametrize("kind", ["10xV2", "10xV3-noI1"])
def test_a_10x_job_is_converted_verified_and_uploaded_once(sandbox, sandbox_env, tmp_path, kind):
    submission, _jobs, plan = archive_plan(sandbox, tmp_path, [kind])
    finished = run_job(sandbox, job_environment(sandbox_env), plan, tmp_path / "work")
    assert finished.returncode == 0, finished.stderr
    (job,) = result_of(finished)["jobs"]
    (bam,) = job["files"]
    assert bam["upload"] == "uploaded" and bam["reads"] == 300
    assert len(job["inputs"]) == (3 if kind == "10xV2" else 2)
    for step in ("convert to", "verify"):  # the long steps of a large run show their progress
        assert f"{step} {bam['name']}: 100% (" in finished.stderr
    files = uploaded_files(sandbox, submission, [bam["name"]])
    assert files[bam["name"]]["md5"] == bam["md5"]
    assert files[bam["name"]]["uploaded_exactly_once"]
    assert files[bam["name"]]["state"] == "ready"
    assert json.loads((tmp_path / "work" / "result-0.json").read_text())["jobs"] == [job]


def test_real_10x_reads_are_converted_and_uploaded(sandbox, sandbox_env, tmp_path, lamanno_dir):
    submission, _jobs, plan = archive_plan(sandbox, tmp_path, ["lamanno"])
    finished = run_job(sandbox, job_environment(sandbox_env), plan, tmp_path / "work")
    assert finished.returncode == 0, finished.stderr
    ((bam,),) = [job["files"] for job in result_of(finished)["jobs"]]
    assert bam["reads"] > 0
    assert "verified " + bam["name"] in finished.stderr
    on_dsp = uploaded_files(sandbox, submission, [bam["name"]])[bam["name"]]
    assert on_dsp["md5"] == bam["md5"] and on_dsp["uploaded_exactly_once"]
    assert on_dsp["state"] == "ready"  # DSP's content check (read count) passed


def test_a_plain_file_is_uploaded_once_and_not_again(sandbox, sandbox_env, tmp_path):
    submission, jobs, plan = archive_plan(sandbox, tmp_path, ["plain"])
    env = job_environment(sandbox_env)
    first = run_job(sandbox, env, plan, tmp_path / "work", "--job", "0")
    assert first.returncode == 0, first.stderr
    document = result_of(first)
    assert (document["succeeded"], document["failed"]) == (1, 0)
    (file,) = document["jobs"][0]["files"]
    assert file["upload"] == "uploaded" and file["name"] == jobs[0]["files"][0]["name"]
    assert re.search(rf"downloaded s3://\S+/{re.escape(file['name'])} [\d.]+ MB md5", first.stderr)
    assert "uploaded " + file["name"] in first.stderr

    again = run_job(sandbox, env, plan, tmp_path / "work")
    assert again.returncode == 0, again.stderr
    (file_again,) = result_of(again)["jobs"][0]["files"]
    assert file_again["upload"] == "already-on-dsp"
    on_dsp = uploaded_files(sandbox, submission, [file["name"]])[file["name"]]
    assert on_dsp["md5"] == file["md5"] and on_dsp["uploaded_exactly_once"]


@pytest.mark.parametrize("kind", ["plain", "10xV2"])
def test_an_interrupted_upload_resumes_from_the_servers_offset(
    sandbox_faults, sandbox_env, tmp_path, kind
):
    sandbox = sandbox_faults
    submission, jobs, plan = archive_plan(sandbox, tmp_path, [kind], reads=2000)
    name = jobs[0]["files"][0]["name"]
    workdir = tmp_path / "work"
    url = kill_mid_upload(sandbox, sandbox_env, plan, workdir, name)
    interrupted_at = tus_offset(url)

    finished = run_job(sandbox, job_environment(sandbox_env), plan, workdir, "--chunk-size", "4K")
    assert finished.returncode == 0, finished.stderr
    resumed = re.search(rf"upload of {re.escape(name)} resumed at offset (\d+)", finished.stderr)
    assert resumed, finished.stderr
    assert int(resumed.group(1)) == interrupted_at > 0
    if kind == "10xV2":
        assert f"reusing {name}, converted and verified earlier" in finished.stderr
    (file,) = result_of(finished)["jobs"][0]["files"]
    on_dsp = uploaded_files(sandbox, submission, [name])[name]
    assert on_dsp["md5"] == file["md5"]
    assert on_dsp["uploads_created"] == 1 and on_dsp["uploaded_exactly_once"]


def kill_mid_upload(
    sandbox: SandboxInfo, sandbox_env: dict[str, str], plan: Path, workdir: Path, name: str
) -> str:
    """Run the plan's job until DSP has some bytes of ``name``, then SIGKILL it (a lost node);
    returns the tus upload's URL. Clears the sandbox's faults."""
    state_file = workdir / "job-0" / "uploads" / f"{name}.tus.json"
    sandbox.set_faults("dsp", latency=0.1)  # slow chunks, so the job is caught mid-upload
    command = [str(HCA_ARCHIVE), "run-job", "--plan", str(plan), "--workdir", str(workdir)]
    with (workdir.parent / "first.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--chunk-size", "4K"], env=job_environment(sandbox_env), stderr=log
        )
        try:
            url = wait_for("the upload to start", lambda: _upload_url(state_file), timeout=120)
            wait_for("some bytes on DSP", lambda: tus_offset(url) >= 8192, timeout=120)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    sandbox.clear_faults()
    time.sleep(0.2)  # let DSP store the bytes of the chunk that was cut off
    return url


def test_sigterm_ends_the_job_as_failed_with_its_result_written(
    sandbox_faults, sandbox_env, tmp_path
):
    sandbox = sandbox_faults
    _submission, jobs, plan = archive_plan(sandbox, tmp_path, ["plain", "plain"], reads=2000)
    workdir = tmp_path / "work"
    state_file = workdir / "job-0" / "uploads" / f"{jobs[0]['files'][0]['name']}.tus.json"
    sandbox.set_faults("dsp", latency=0.1)
    command = [str(HCA_ARCHIVE), "run-job", "--plan", str(plan), "--workdir", str(workdir)]
    process = subprocess.Popen(
        [*command, "--chunk-size", "4K"],
        env=job_environment(sandbox_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for("the upload to start", lambda: _upload_url(state_file), timeout=120)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert_no_secrets(sandbox, stdout + stderr)
    assert process.returncode == 1
    first, second = json.loads(stdout)["jobs"]
    assert first["status"] == "failed" and first["error"].endswith("upload: stopped by SIGTERM")
    assert second["error"].endswith("not started: stopped by SIGTERM")
    written = json.loads((workdir / "result-0.json").read_text())
    assert written["jobs"] == [first]
    assert json.loads((workdir / "result-1.json").read_text())["jobs"] == [second]


def test_a_run_longer_than_a_token_lifetime_keeps_getting_fresh_tokens(tmp_path):
    with start_sandbox(tmp_path / "sandbox", "--token-ttl", "2") as sandbox:
        submission, jobs, plan = archive_plan(sandbox, tmp_path, ["plain", "plain"], reads=2000)
        sandbox.set_faults("dsp", latency=0.05)
        env = job_environment(sandbox.env())
        finished = run_job(sandbox, env, plan, tmp_path / "work", "--chunk-size", "4K")
        assert finished.returncode == 0, finished.stderr
        document = result_of(finished)
        took = sum(job["seconds"]["upload"] for job in document["jobs"])
        assert took > 2, "the uploads must outlive one token for this test to show anything"
        names = [job["files"][0]["name"] for job in jobs]
        assert set(uploaded_files(sandbox, submission, names)) >= set(names)


def test_dropped_connections_to_dsp_are_survived_without_a_second_upload(tmp_path):
    # A private sandbox: its fault dice are seeded, and only this job talks to it, so the
    # pattern of drops is the same on every run.
    with start_sandbox(tmp_path / "sandbox", "--seed", "7") as sandbox:
        submission, jobs, plan = archive_plan(sandbox, tmp_path, ["plain"], reads=2000)
        name = jobs[0]["files"][0]["name"]
        sandbox.set_faults("dsp", drop_rate=0.25)
        env = job_environment(sandbox.env())
        finished = run_job(sandbox, env, plan, tmp_path / "work", "--chunk-size", "8K")
        sandbox.clear_faults()
        assert finished.returncode == 0, finished.stderr
        assert re.search(
            rf"upload of {re.escape(name)} resumed at offset \d+ after", finished.stderr
        )
        (file,) = result_of(finished)["jobs"][0]["files"]
        on_dsp = uploaded_files(sandbox, submission, [name])[name]
        assert on_dsp["md5"] == file["md5"] and on_dsp["uploaded_exactly_once"]


def _upload_url(state_file: Path) -> str | None:
    try:
        return json.loads(state_file.read_text())["url"]
    except (OSError, ValueError):
        return None


def test_a_corrupted_cached_input_is_fetched_again(sandbox_faults, sandbox_env, tmp_path):
    """A job killed mid-upload runs again (DSP lacks its file): its cached input is checked."""
    submission, jobs, plan = archive_plan(sandbox_faults, tmp_path, ["plain"], reads=2000)
    name = jobs[0]["files"][0]["name"]
    kill_mid_upload(sandbox_faults, sandbox_env, plan, tmp_path / "work", name)
    cached = tmp_path / "work" / "job-0" / "inputs" / name
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    cached.write_bytes(bytes(damaged))

    again = run_job(sandbox_faults, job_environment(sandbox_env), plan, tmp_path / "work")
    assert again.returncode == 0, again.stderr
    assert f"cached {cached} does not verify" in again.stderr
    (job,) = result_of(again)["jobs"]
    assert job["inputs"][0]["reused"] is False
    on_dsp = uploaded_files(sandbox_faults, submission, [name])[name]
    assert on_dsp["md5"] == job["files"][0]["md5"] and on_dsp["uploaded_exactly_once"]


def test_mismatched_inputs_fail_their_job_only(sandbox, sandbox_env, tmp_path):
    submission, jobs, plan = archive_plan(sandbox, tmp_path, ["10xV2", "10xV2", "plain"])
    # Job 0 gets the R2 of job 1: other reads, so names differ from the first read on.
    for item in jobs[0]["conversion"]["inputs"]:
        if item["read_index"] == "read2":
            (other,) = [i for i in jobs[1]["conversion"]["inputs"] if i["read_index"] == "read2"]
            item["cloud_url"] = other["cloud_url"]
    plan.write_text(json.dumps({"jobs": [jobs[0], jobs[2]]}))

    finished = run_job(sandbox, job_environment(sandbox_env), plan, tmp_path / "work")
    assert finished.returncode == 1
    document = result_of(finished)
    bad, plain = document["jobs"]
    assert (bad["status"], plain["status"]) == ("failed", "succeeded")
    assert re.search(r"convert: .*fastq\.gz.*read \d+", bad["error"]), bad["error"]
    assert (bad["retryable"], plain["retryable"]) == (False, True)  # the inputs will not change
    assert bad["files"] == []
    (dsp_submission,) = sandbox.submission_summary(submission)["dsp_submissions"]
    bam_name = jobs[0]["files"][0]["name"]
    assert next(f for f in dsp_submission["files"] if f["name"] == bam_name)["uploads_created"] == 0
    assert json.loads((tmp_path / "work" / "result-0.json").read_text())["failed"] == 1
    assert json.loads((tmp_path / "work" / "result-1.json").read_text())["succeeded"] == 1


def test_credentials_from_a_private_file_which_is_then_deleted(sandbox, sandbox_env, tmp_path):
    _submission, _jobs, plan = archive_plan(sandbox, tmp_path, ["plain"])
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({key: sandbox_env[key] for key in SECRET_VARIABLES}))
    credentials.chmod(0o600)
    env = job_environment(sandbox_env, without=SECRET_VARIABLES)
    finished = run_job(
        sandbox,
        env,
        plan,
        tmp_path / "work",
        "--credentials-file",
        str(credentials),
        "--delete-credentials-file",
    )
    assert finished.returncode == 0, finished.stderr
    assert not credentials.exists()


def test_a_credentials_file_others_can_read_is_refused(sandbox, sandbox_env, tmp_path):
    _submission, _jobs, plan = archive_plan(sandbox, tmp_path, ["plain"])
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({key: sandbox_env[key] for key in SECRET_VARIABLES}))
    credentials.chmod(0o644)
    env = job_environment(sandbox_env, without=SECRET_VARIABLES)
    finished = run_job(
        sandbox, env, plan, tmp_path / "work", "--credentials-file", str(credentials)
    )
    assert finished.returncode == 2
    assert "chmod 600" in finished.stderr
    assert finished.stdout == ""
    assert not (tmp_path / "work").exists()


def test_an_invalid_job_fails_alone_and_says_why(sandbox, sandbox_env, tmp_path):
    _submission, jobs, plan = archive_plan(sandbox, tmp_path, ["plain", "plain"])
    jobs[0]["conversion"] = {"output_name": "x.bam", "schema": "10xV1", "inputs": []}
    jobs[0]["files"].append({"name": "x.bam"})
    plan.write_text(json.dumps({"jobs": jobs}))
    finished = run_job(sandbox, job_environment(sandbox_env), plan, tmp_path / "work")
    assert finished.returncode == 1
    bad, good = result_of(finished)["jobs"]
    assert bad["status"] == "failed" and "conversion.schema" in bad["error"]
    assert bad["retryable"] is False
    assert "10xV1" in bad["error"] and bad["error"].startswith("invalid plan entry: job 0")
    assert good["status"] == "succeeded"


def start_copy(
    sandbox_env: dict[str, str], plan: Path, tmp_path: Path, run: str
) -> subprocess.Popen[str]:
    """One run's copy of the plan's jobs, in its own work directory, on the shared lock
    directory, in small chunks; its stderr goes to ``<run>.log``."""
    command = [str(HCA_ARCHIVE), "run-job", "--plan", str(plan), "--chunk-size", "4K"]
    command += ["--lock-dir", str(tmp_path / "job-locks"), "--workdir", str(tmp_path / run)]
    with (tmp_path / f"{run}.log").open("w") as log:
        return subprocess.Popen(
            command, env=job_environment(sandbox_env), stdout=subprocess.PIPE, stderr=log, text=True
        )


def start_two_copies(sandbox, sandbox_env, tmp_path, kind="plain"):
    """The second copy starts while the first is uploading (DSP is slowed down for that)."""
    submission, jobs, plan = archive_plan(sandbox, tmp_path, [kind], reads=2000)
    name = jobs[0]["files"][0]["name"]
    sandbox.set_faults("dsp", latency=0.1)
    first = start_copy(sandbox_env, plan, tmp_path, "run-1")
    state_file = tmp_path / "run-1" / "job-0" / "uploads" / f"{name}.tus.json"
    wait_for("the first copy's upload to start", lambda: _upload_url(state_file), timeout=120)
    return submission, name, first, start_copy(sandbox_env, plan, tmp_path, "run-2")


@pytest.mark.parametrize("kind", ["plain", "10xV2"])
def test_two_runs_copies_of_one_job_take_turns_and_upload_once(
    sandbox_faults, sandbox_env, tmp_path, kind
):
    """A wrangler's run and the sweep's, started together, each run the job in its own work
    directory: sharing a lock directory, the second waits and then finds the file on DSP,
    before it downloads or converts anything."""
    sandbox = sandbox_faults
    submission, name, first, second = start_two_copies(sandbox, sandbox_env, tmp_path, kind)
    stdouts = [copy.communicate(timeout=300)[0] for copy in (first, second)]
    sandbox.clear_faults()
    logs = [(tmp_path / f"{run}.log").read_text() for run in ("run-1", "run-2")]
    for copy, log in zip((first, second), logs, strict=True):
        assert copy.returncode == 0, log
        assert_no_secrets(sandbox, log)
    jobs = [json.loads(stdout)["jobs"][0] for stdout in stdouts]
    assert [job["files"][0]["upload"] for job in jobs] == ["uploaded", "already-on-dsp"]
    assert jobs[1]["inputs"] == [] and jobs[1]["seconds"]["convert"] == 0
    assert not any((tmp_path / "run-2" / "job-0" / "inputs").iterdir())
    assert [job["already_archived"] for job in jobs] == [False, True]
    held, uploaded = jobs[1]["files"][0], jobs[0]["files"][0]
    assert held["bytes"] == held["on_dsp"]["uploadedSize"] == uploaded["bytes"]
    assert held["md5"] in (uploaded["md5"], None)  # None: DSP's check of the BAM still running
    waited = re.search(
        r"another run is running this job for the same DSP submission \((.*)\)", logs[1]
    )
    assert waited and f"work directory {tmp_path / 'run-1'}" in waited.group(1), logs[1]
    on_dsp = uploaded_files(sandbox, submission, [name])[name]
    assert on_dsp["uploads_created"] == 1 and on_dsp["uploaded_exactly_once"]


def test_a_copy_stopped_while_waiting_for_another_still_writes_its_result(
    sandbox_faults, sandbox_env, tmp_path
):
    sandbox = sandbox_faults
    _submission, _name, first, second = start_two_copies(sandbox, sandbox_env, tmp_path)
    second_log = tmp_path / "run-2.log"
    wait_for("the second copy to wait", lambda: "waiting for it" in second_log.read_text())
    second.send_signal(signal.SIGINT)  # as LSF's bkill does: SIGINT, then SIGTERM at once
    second.send_signal(signal.SIGTERM)
    stdout, _ = second.communicate(timeout=60)
    assert second.returncode == 1, second_log.read_text()
    (job,) = result_of(subprocess.CompletedProcess([], 1, stdout))["jobs"]
    assert job["status"] == "failed"
    assert "stopped by SIGINT while waiting for another run's copy of this job" in job["error"]
    marker = json.loads((tmp_path / "run-2" / "result-0.json").read_text())
    assert marker["jobs"][0]["error"] == job["error"]
    first.communicate(timeout=300)
    sandbox.clear_faults()
    assert first.returncode == 0, (tmp_path / "run-1.log").read_text()
