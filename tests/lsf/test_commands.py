"""Pure LSF command builders: job names, work paths, memory sizing, settings and bsub argv."""

from __future__ import annotations

import json
import re
import shlex
from importlib import metadata
from pathlib import Path

import pytest

from hca_archive.job_image import release_job_image
from hca_archive.lsf.commands import bjobs_by_name_argv, bjobs_status_argv, bkill_argv, bsub_argv
from hca_archive.lsf.names import MAX_JOB_NAME, job_name, job_paths
from hca_archive.lsf.resources import (
    MEMORY_CAP_MB,
    MEMORY_FLOOR_MB,
    LsfSettings,
    LsfSettingsError,
    command_prefix,
    memory_mb,
    wall_time,
)

GIB = 2**30
REPO = Path(__file__).resolve().parents[2]


def test_job_name_is_deterministic_and_lsf_safe():
    run = "manual__2026-11-29T12:00:00+00:00"
    name = job_name("archive_submission", "archive_file", run, 7)
    assert name == job_name("archive_submission", "archive_file", run, 7)
    assert name.startswith(
        "hca-archive_submission-archive_file-manual__2026-11-29T12_00_00_00_00-7-"
    )
    assert all(char.isalnum() or char in "_.-" for char in name)


def test_job_name_differs_per_map_index_and_run():
    names = {job_name("d", "t", "r", index) for index in range(-1, 50)}
    names.add(job_name("d", "t", "r2", 0))
    assert len(names) == 52


def test_two_lsf_tasks_of_one_run_never_share_a_job_name_or_directory():
    """A job found by name is adopted, its results read from its directory: another task's job
    would pass for this task's."""
    assert job_name("d", "archive_file", "r", 0) != job_name("d", "rearchive_file", "r", 0)
    first, second = (job_paths("/s", "d", task, "r", 0) for task in ("a" * 50, "a" * 50 + "b"))
    assert first.directory != second.directory
    assert first.lock_dir == second.lock_dir == "/s/job-locks"


def test_job_name_of_hostile_long_ids_is_bounded_and_distinct():
    hostile = "$(rm -rf /); `id` *[0] <x> " + "y" * 500
    first = job_name(hostile, hostile, hostile, 1)
    second = job_name(hostile, hostile, hostile + "z", 1)  # same slugs, differs past the limit
    assert len(first) == MAX_JOB_NAME  # cut to fit: the slugs, not the index or the hash
    assert re.fullmatch(r"hca-.*-1-[0-9a-f]{10}", first)
    assert first != second
    assert shlex.quote(first) == first


def test_job_paths_stay_under_the_work_root():
    paths = job_paths("/scratch/hca/", "../../etc", "../t", "run/../../x", 2)
    assert paths.directory.startswith("/scratch/hca/")
    assert ".." not in paths.directory.split("/")
    assert paths.directory.endswith("-job-2")
    assert paths.result(3) == f"{paths.directory}/result-3.json"
    assert paths.scratch(3) == f"{paths.directory}/job-3"
    assert paths.credentials == f"{paths.directory}/credentials.json"
    assert paths.lock_dir == "/scratch/hca/job-locks"  # one for every run's jobs


@pytest.mark.parametrize("root", ["relative/dir", "/with space", "/semi;colon", "/$HOME"])
def test_job_paths_refuse_an_unsafe_work_root(root):
    with pytest.raises(ValueError, match="work root"):
        job_paths(root, "d", "t", "r", 0)


def test_memory_has_a_floor_grows_with_input_and_is_capped():
    assert memory_mb(None) == MEMORY_FLOOR_MB
    assert memory_mb(0) == MEMORY_FLOOR_MB
    assert memory_mb(10 * GIB) == MEMORY_FLOOR_MB + 640
    assert memory_mb(100 * GIB) == MEMORY_FLOOR_MB + 6400
    assert memory_mb(10_000 * GIB) == MEMORY_CAP_MB
    assert memory_mb(GIB, floor_mb=1000, per_gib_mb=100, cap_mb=1050) == 1050


def test_memory_refuses_a_negative_size():
    with pytest.raises(LsfSettingsError, match="negative"):
        memory_mb(-1)


def test_wall_time_accepts_hh_mm_and_minutes():
    assert wall_time(None) is None
    assert wall_time("12:30") == "12:30"
    assert wall_time(90) == "1:30"
    assert wall_time(65) == "1:05"
    for bad in ("12", "1:60", "0:00", "x", -5):
        with pytest.raises(LsfSettingsError, match="wall time"):
            wall_time(bad)


def test_settings_take_params_over_connection_extra_over_defaults():
    extra = {
        "lsf_queue": "long",
        "lsf_cores": "8",
        "lsf_work_root": "/scratch",
        "lsf_image": "a/b:1",
    }
    settings = LsfSettings.resolve({"queue": "short", "cores": None}, extra, input_bytes=None)
    assert settings.queue == "short"
    assert settings.cores == 8
    assert settings.work_root == "/scratch"
    assert settings.memory_mb == MEMORY_FLOOR_MB
    assert settings.command_prefix == ("singularity", "exec", "docker://a/b:1", "hca-archive")


def test_settings_memory_from_input_and_extra_floor_or_explicit():
    assert LsfSettings.resolve({}, {"lsf_memory_floor_mb": 2000}, input_bytes=GIB).memory_mb == 2064
    assert LsfSettings.resolve({"memory_mb": 9000}, {}, input_bytes=GIB).memory_mb == 9000


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cores": "two"}, "cores must be a whole number"),
        ({"memory_mb": 0}, "memory_mb must be a positive"),
        ({"queue": "normal; rm -rf /"}, "LSF queue"),
        ({"queue": "normal;reboot"}, "LSF queue"),  # no space needed to end a shell command
        ({"command_prefix": "conda run -n 'my env' hca-archive"}, "command prefix word"),
        ({"command_prefix": []}, "prefix is empty"),
    ],
)
def test_settings_name_what_is_wrong(params, message):
    with pytest.raises(LsfSettingsError, match=message):
        LsfSettings.resolve(params, {})


def test_command_prefix_from_a_string_or_words():
    assert command_prefix("/opt/venv/bin/hca-archive", "ignored") == ("/opt/venv/bin/hca-archive",)
    assert command_prefix(["conda", "run", "-n", "hca", "hca-archive"], "x")[-1] == "hca-archive"


def test_the_default_prefix_runs_hca_archive_in_the_job_image_once():
    """Singularity's ``run`` starts the image's entrypoint with the words given, ``exec`` runs
    the words alone: either way the job must start as ``hca-archive run-job``."""
    dockerfile = (REPO / "include" / "docker" / "job.Dockerfile").read_text()
    (entrypoint,) = [
        json.loads(line.split(None, 1)[1])
        for line in dockerfile.splitlines()
        if line.startswith("ENTRYPOINT")
    ]
    prefix = command_prefix(None, None)
    assert prefix[:1] == ("singularity",) and prefix[2] == f"docker://{release_job_image()}"
    words = [*prefix[3:], "run-job"]
    started = [*entrypoint, *words] if prefix[1] == "run" else words
    assert started == ["hca-archive", "run-job"]


def test_without_the_package_installed_the_lsf_image_must_be_configured(monkeypatch):
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with pytest.raises(LsfSettingsError, match="extra lsf_image"):
        LsfSettings.resolve({}, {})
    assert LsfSettings.resolve({}, {"lsf_image": "r/j:1"}).command_prefix[2] == "docker://r/j:1"


def test_bsub_argv_carries_resources_paths_and_only_generated_words():
    settings = LsfSettings.resolve(
        {"queue": "long", "wall_time": "4:00", "memory_mb": 6000, "cores": 3}, {}
    )
    paths = job_paths("/scratch", "dag", "t", "run", 0)
    argv = bsub_argv("hca-dag-run-0-abc", settings, paths)
    assert argv[:7] == ["bsub", "-J", "hca-dag-run-0-abc", "-M", "6000", "-n", "3"]
    assert argv[argv.index("-q") + 1] == "long"
    assert argv[argv.index("-W") + 1] == "4:00"
    assert argv[argv.index("-o") + 1] == paths.stdout
    assert argv[argv.index("-e") + 1] == paths.stderr
    assert argv[argv.index("-R") + 1] == "rusage[mem=6000]"
    command = argv[argv.index("rusage[mem=6000]") + 1 :]
    assert command == [
        "singularity", "exec", f"docker://{release_job_image()}", "hca-archive",
        "run-job", "--plan", paths.plan, "--workdir", paths.directory,
        "--credentials-file", paths.credentials, "--delete-credentials-file",
        "--lock-dir", "/scratch/job-locks", "--threads", "3",
    ]  # fmt: skip
    # The remote shell and LSF's re-joining both see exactly these words.
    assert shlex.split(shlex.join(argv)) == argv
    assert shlex.split(" ".join(command)) == command


def test_bsub_argv_without_queue_or_wall_time_leaves_them_to_lsf():
    argv = bsub_argv("n", LsfSettings.resolve({}, {}), job_paths("/s", "d", "t", "r", 0))
    assert "-q" not in argv
    assert "-W" not in argv


def test_bjobs_and_bkill_argv_refuse_anything_but_job_ids():
    assert bjobs_status_argv([12, "13"]) == [
        "bjobs", "-o", "jobid stat exit_code job_name", "-json", "12", "13",
    ]  # fmt: skip
    assert bkill_argv(["5"]) == ["bkill", "5"]
    assert bjobs_by_name_argv("hca-x")[:4] == ["bjobs", "-a", "-J", "hca-x"]
    for bad in (["1; rm -rf /"], [], ["-1"]):
        with pytest.raises(ValueError, match="job id"):
            bjobs_status_argv(bad)
    with pytest.raises(LsfSettingsError):
        bjobs_by_name_argv("a name")
