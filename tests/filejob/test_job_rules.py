"""Rules of the file job that need no server: skipping uploads, choosing jobs, sizes."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hca_archive.filejob.cli import RedactSecrets, byte_size
from hca_archive.filejob.job import why_not_complete
from hca_archive.filejob.selection import PlanUnusable, select_jobs
from hca_archive.filejob.workdir import UnsafePathError, child, exclusive

MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (None, "DSP does not have it yet"),
        ({"totalSize": 99}, "DSP's copy has 99 bytes, ours 100"),
        ({"totalSize": 100, "uploadedSize": 40}, "DSP has 40 of its 100 bytes"),
        (
            {"totalSize": 100, "uploadedSize": 100, "checksum": "f" * 32},
            f"DSP's copy has MD5 {'f' * 32}, ours {MD5}",
        ),
        ({"totalSize": 100, "uploadedSize": 100, "checksum": MD5}, None),
        (
            {"totalSize": 100},
            "DSP's record shows neither its uploaded size nor a checked file (status None)",
        ),
        ({"totalSize": 100, "status": "READY_FOR_ARCHIVE"}, None),
        ({"uploadedSize": 100}, "DSP's record has no size (None)"),
        ({"totalSize": 100, "uploadedSize": 100, "checksum": MD5.upper()}, None),
        ({"totalSize": 100, "uploadedSize": 100, "checksum": "sha256:abc"}, None),
        # DSP's content check failed: held only when its checksum shows our bytes
        ({"totalSize": 100, "uploadedSize": 100, "checksum": MD5, "status": "ERROR"}, None),
        (
            {"totalSize": 100, "uploadedSize": 100, "checksum": None, "status": "ERROR"},
            "DSP's check of its copy failed (status ERROR)",
        ),
        (
            {"totalSize": 100, "uploadedSize": 100, "checksum": "sha256:ab", "status": "ERROR"},
            "DSP's check of its copy failed (status ERROR)",
        ),
        (
            {"totalSize": 100, "uploadedSize": 100, "checksum": "f" * 32, "status": "ERROR"},
            f"DSP's copy has MD5 {'f' * 32}, ours {MD5}",
        ),
    ],
)
def test_an_upload_is_skipped_only_for_a_complete_copy_of_our_file(document, reason):
    assert why_not_complete(document, 100, MD5) == reason


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"totalSize": 7, "uploadedSize": 7, "checksum": "f" * 32}, None),
        ({"totalSize": 7, "uploadedSize": 3}, "DSP has 3 of its 7 bytes"),
        (
            {"totalSize": 7, "status": "UPLOADED"},
            "DSP's record shows neither its uploaded size nor a checked file (status UPLOADED)",
        ),
        (
            {"totalSize": 7, "uploadedSize": 7, "checksum": "f" * 32, "status": "ERROR"},
            "DSP's check of its copy failed (status ERROR)",
        ),
        # no md5 on either side: nothing shows the failed copy holds our bytes
        (
            {"totalSize": 7, "uploadedSize": 7, "status": "ERROR"},
            "DSP's check of its copy failed (status ERROR)",
        ),
        # with no size of ours to compare, DSP's must be a number of bytes
        ({"totalSize": "7", "uploadedSize": "7"}, "DSP's record has no size ('7')"),
    ],
)
def test_a_bam_not_converted_yet_counts_as_held_once_dsp_has_all_of_its_bytes(document, reason):
    """Size and md5 of a BAM are known only after converting: DSP's are not compared."""
    assert why_not_complete(document, None, None) == reason


JOB = {
    "dsp_api_url": "https://dsp.example.org",
    "submission_url": "https://dsp.example.org/api/submissions/sub-1",
    "manifest_id": "m1",
    "files": [{"name": "a.fastq.gz", "read_index": "read1", "cloud_url": "s3://bucket-a/k/a"}],
}


def job(manifest: str, name: str) -> dict:
    entry = copy.deepcopy(JOB)
    entry["manifest_id"] = manifest
    entry["files"][0]["name"] = name
    return entry


def test_every_job_of_a_valid_plan_or_the_chosen_one():
    plan = {"jobs": [job("m1", "a.fastq.gz"), job("m2", "b.fastq.gz")]}
    jobs, refused = select_jobs(plan)
    assert [j.index for j in jobs] == [0, 1] and refused == []
    jobs, refused = select_jobs(plan, 1)
    assert [(j.index, j.manifest_id) for j in jobs] == [(1, "m2")]
    with pytest.raises(PlanUnusable, match="no job 2"):
        select_jobs(plan, 2)


def test_with_the_environments_dsp_a_job_naming_another_is_refused_alone():
    elsewhere = job("m2", "b.fastq.gz")
    elsewhere["dsp_api_url"] = "https://dsp.attacker.example"
    elsewhere["submission_url"] = "https://dsp.attacker.example/api/submissions/sub-1"
    plan = {"jobs": [job("m1", "a.fastq.gz"), elsewhere]}
    assert len(select_jobs(plan)[0]) == 2  # without it, nothing to compare with
    jobs, refused = select_jobs(plan, dsp_url="https://dsp.example.org/api/")
    assert [j.manifest_id for j in jobs] == ["m1"]
    ((index, error),) = [(r.index, r.error) for r in refused]
    assert index == 1 and "dsp.attacker.example" in error, error


def test_a_bad_job_is_refused_alone_and_the_others_keep_their_index():
    bad = job("m1", "a.fastq.gz")
    bad["conversion"] = {"output_name": "a.fastq.gz", "schema": "10xV1", "inputs": []}
    plan = {"jobs": [bad, job("m2", "../b"), job("m3", "c.fastq.gz")]}
    jobs, refused = select_jobs(plan)
    assert [(j.index, j.manifest_id) for j in jobs] == [(2, "m3")]
    assert [(r.index, r.label, r.status) for r in refused] == [
        (0, "m1", "failed"),
        (1, "m2", "failed"),
    ]
    assert "conversion.schema" in refused[0].error and "10xV1" in refused[0].error
    assert "files[0].name" in refused[1].error
    jobs, refused = select_jobs(plan, 2)
    assert [j.index for j in jobs] == [2] and refused == []


def test_a_plan_that_is_not_a_job_list_is_unusable():
    with pytest.raises(PlanUnusable, match="not usable"):
        select_jobs({"jobs": "nope"})


def test_sizes():
    assert byte_size("65536") == 65536
    assert byte_size("64K") == 65536
    assert byte_size("8m") == 8 * 1024 * 1024
    for bad in ("", "0", "-1", "1.5M", "M", "8X"):
        with pytest.raises(argparse.ArgumentTypeError):
            byte_size(bad)


def test_log_lines_never_carry_a_secret_or_a_jwt():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcmNoaXZlciJ9.c2lnbmF0dXJl"
    record = logging.LogRecord(
        "hca_archive", logging.INFO, __file__, 1, "token %s password %s", (jwt, "pw-1234"), None
    )
    assert RedactSecrets(["pw-1234"]).filter(record)
    assert record.getMessage() == "token *** password ***"


def test_a_job_lock_is_held_by_one_process_at_a_time(tmp_path):
    lock = tmp_path / "job-0.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from hca_archive.filejob.workdir import UnsafePathError, child, exclusive\n"
            "with exclusive(Path(sys.argv[1])) as held:\n"
            "    print(held, flush=True); time.sleep(60)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        with exclusive(lock) as held:
            assert held is False
    finally:
        holder.kill()
        holder.wait()
    with exclusive(lock) as held:
        assert held is True


# A run-job that reaches no service: every job below ends before a download.
OFFLINE_JOB_ENV = {
    "HCA_AAP_URL": "http://127.0.0.1:9/auth",
    "HCA_AAP_USERNAME": "user",
    "HCA_AAP_PASSWORD": "pw-5678",
    "HCA_DSP_URL": "https://dsp.example.org",
}


def run_job_offline(
    plan: Path, workdir: Path, without: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": os.environ["PATH"], **OFFLINE_JOB_ENV}
    for name in without:
        del environment[name]
    command = [sys.executable, "-m", "hca_archive.cli", "run-job", "--plan", str(plan)]
    return subprocess.run(
        [*command, "--workdir", str(workdir)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_job_leaves_a_job_another_process_holds_alone(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"jobs": [job("m1", "a.fastq.gz")]}))
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = workdir / "result-0.json"
    result.write_text('{"written by": "the running process"}')
    with exclusive(workdir / "job-0.lock") as held:
        assert held
        finished = run_job_offline(plan, workdir)
    assert finished.returncode == 1
    (outcome,) = json.loads(finished.stdout)["jobs"]
    assert "not started: another run-job process is running it" in outcome["error"]
    assert result.read_text() == '{"written by": "the running process"}'


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "x\0y", " x", "/etc"])
def test_local_paths_are_single_names_inside_the_work_directory(tmp_path, name):
    with pytest.raises(UnsafePathError):
        child(tmp_path, name)


def test_a_symlink_cannot_lead_a_name_out_of_the_work_directory(tmp_path):
    (tmp_path / "escape").symlink_to("/etc")
    with pytest.raises(UnsafePathError, match="leaves"):
        child(tmp_path, "escape")
    assert child(tmp_path, "R1.fastq.gz") == tmp_path.resolve() / "R1.fastq.gz"


def test_run_job_without_the_environments_dsp_refuses_to_start(tmp_path):
    """The plan says where the AAP token goes; without the DSP to hold it to, nothing runs."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"jobs": [job("m1", "a.fastq.gz")]}))
    finished = run_job_offline(plan, tmp_path / "work", without=("HCA_DSP_URL",))
    assert finished.returncode == 2
    assert "no DSP named: set HCA_DSP_URL" in finished.stderr
    assert finished.stdout == ""
    assert not (tmp_path / "work").exists()


def test_run_job_refuses_a_plan_nested_too_deeply_to_read(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text("[" * 200_000)
    finished = run_job_offline(plan, tmp_path / "work")
    assert finished.returncode == 2, finished.stderr
    assert "is nested too deeply to read" in finished.stderr
    assert "Traceback" not in finished.stderr
