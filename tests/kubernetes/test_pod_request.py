"""The pod a Kubernetes file job asks for: what it runs, reads, gets and may do."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from hca_archive.filejob.credentials import ENVIRONMENT_NAMES
from hca_archive.orchestration.file_job_results import FILE_JOB_TIME_LIMIT
from hca_archive.orchestration.runners.kubernetes import (
    JOB_SCRIPT,
    MAX_PLAN_BYTES,
    PLAN_ANNOTATION,
    RESULT_FILE,
    KubernetesSettingsError,
    PodSettings,
    build_pod_request,
    default_image,
    pod_name,
)
from tests.kubernetes.conftest import HOSTILE, hostile_job, plan_job

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
GIB = 2**30
SETTINGS = PodSettings(
    image="registry.example/hca-archive-job:1.2.3",
    credentials_secret="hca-archive-sandbox-credentials",
    cpu=3,
    memory_mb=6144,
    disk_gib=40,
)


def serialized(batch: list[dict[str, Any]], settings: PodSettings = SETTINGS) -> dict[str, Any]:
    """The pod as the API server receives it (camelCase JSON)."""
    from kubernetes.client import ApiClient

    pod = build_pod_request(batch, name="hca-job-0-abc", environment="sandbox", settings=settings)
    return ApiClient().sanitize_for_serialization(pod)


def job_container(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["spec"]["containers"]
    assert container["name"] == "base"  # KPO follows this container's logs and exit status
    return container


def test_runs_the_job_image_with_fixed_words_and_reads_the_plan_from_a_file() -> None:
    batch = [hostile_job(), plan_job("m2", bucket="b-2")]
    pod = serialized(batch)
    container = job_container(pod)

    assert container["image"] == SETTINGS.image
    assert container["command"] == ["/bin/sh", "-c", JOB_SCRIPT, "hca-archive-job"]
    assert container["args"] == [
        "run-job",
        "--plan",
        "/plan/plan.json",
        "--workdir",
        "/work",
        "--threads",
        "3",
    ]
    argv_and_env = json.dumps([container["command"], container["args"], container["env"]])
    for untrusted in (HOSTILE, "R1 $(id)", "s3://", "sub-1"):
        assert untrusted not in argv_and_env
    assert json.loads(pod["metadata"]["annotations"][PLAN_ANNOTATION]) == {"jobs": batch}
    (plan_volume,) = [volume for volume in pod["spec"]["volumes"] if volume["name"] == "plan"]
    (plan_file,) = plan_volume["downwardAPI"]["items"]
    assert plan_file == {
        "path": "plan.json",
        "fieldRef": {"fieldPath": f"metadata.annotations['{PLAN_ANNOTATION}']"},
    }
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/plan"] == {"name": "plan", "mountPath": "/plan", "readOnly": True}


def test_credentials_come_from_the_secret_by_reference_only() -> None:
    container = job_container(serialized([plan_job()]))

    assert "envFrom" not in container  # no other key of the Secret leaks into the job
    names = [variable["name"] for variable in container["env"]]
    assert sorted(names) == sorted(ENVIRONMENT_NAMES.values())
    for variable in container["env"]:
        assert "value" not in variable, variable["name"]
        reference = variable["valueFrom"]["secretKeyRef"]
        assert reference["name"] == "hca-archive-sandbox-credentials"
        assert reference["key"] == variable["name"]
    env = container["env"]
    required = {v["name"] for v in env if not v["valueFrom"]["secretKeyRef"]["optional"]}
    assert required == {"HCA_AAP_URL", "HCA_AAP_USERNAME", "HCA_AAP_PASSWORD"}


def test_requests_and_limits_match_and_the_work_volume_is_bounded() -> None:
    pod = serialized([plan_job()])
    resources = job_container(pod)["resources"]

    expected = {"cpu": "3", "memory": "6144Mi", "ephemeral-storage": "42Gi"}
    assert resources == {"requests": expected, "limits": expected}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes["work"] == {"name": "work", "emptyDir": {"sizeLimit": "40Gi"}}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}


def test_kubernetes_stops_a_pod_that_runs_past_the_deadline() -> None:
    # Airflow applies no execution_timeout while the task is deferred: the pod bounds itself.
    deadline = serialized([plan_job()])["spec"]["activeDeadlineSeconds"]
    assert deadline == FILE_JOB_TIME_LIMIT.total_seconds() == 48 * 3600


def test_runs_unprivileged_on_a_read_only_root() -> None:
    pod = serialized([plan_job()])
    spec = pod["spec"]

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    assert job_container(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_a_batch_too_large_for_an_annotation_is_refused() -> None:
    job = plan_job()
    each = len(json.dumps(job, separators=(",", ":"))) + 1  # with its comma
    fitting = [job] * (MAX_PLAN_BYTES // each - 1)
    assert len(serialized(fitting)["metadata"]["annotations"][PLAN_ANNOTATION]) <= MAX_PLAN_BYTES
    with pytest.raises(KubernetesSettingsError, match=r"at most 204800: run fewer jobs"):
        serialized([job] * (MAX_PLAN_BYTES // each + 1))  # just over: annotations hold 256 KiB


@pytest.mark.parametrize(
    "ids",
    [
        ("archive_submission", "file_jobs", "manual__2026-11-29T13:05:00+00:00", 0),
        ("UPPER.Case..dag", "t", "scheduled__2026-01-01T00:00:00+00:00", 1023),
        ("d", "t", "ünïcödé-ラン-🚀" * 20, 7),
        ("---", "...", "___", -1),
        ("a" * 250, "t" * 250, "b" * 250, 99999),
        ("dag", "t", "$(rm -rf /); `id`", 2),
    ],
)
def test_pod_names_are_dns_labels_and_deterministic(ids: tuple[str, str, str, int]) -> None:
    name = pod_name(*ids)

    assert len(name) <= 63
    assert DNS_LABEL.match(name), name
    assert name == pod_name(*ids)
    dag_id, task_id, run_id, map_index = ids
    assert pod_name(dag_id, task_id, run_id, map_index + 1) != name
    assert pod_name(dag_id, task_id, run_id + "x", map_index) != name
    assert pod_name(dag_id, task_id + "x", run_id, map_index) != name  # another task of the run


def test_ids_that_read_alike_get_different_names() -> None:
    assert pod_name("a_b", "t", "run", 0) != pod_name("a-b", "t", "run", 0)
    assert pod_name("a", "t", "b-c", 0) != pod_name("a-b", "t", "c", 0)


def test_labels_are_valid_label_values() -> None:
    labels = serialized([plan_job()])["metadata"]["labels"]
    assert labels["hca-archive.ebi.ac.uk/environment"] == "sandbox"
    for value in labels.values():
        assert len(value) <= 63 and LABEL_VALUE.match(value), value


def test_memory_follows_the_largest_job_and_disk_the_sum() -> None:
    settings = PodSettings.resolve({}, {}, environment="dev", input_bytes=[40 * GIB, 10 * GIB])

    assert settings.memory_mb == 4096 + 64 * 40
    assert settings.disk_gib == 3 * 50 + 2
    assert settings.credentials_secret == "hca-archive-dev-credentials"
    assert settings.image == default_image()
    assert default_image().endswith(":0.1.0")


def test_unknown_sizes_get_the_defaults() -> None:
    for sizes in ([], [None]):
        settings = PodSettings.resolve({}, {}, environment="dev", input_bytes=sizes)
        assert (settings.memory_mb, settings.disk_gib, settings.cpu) == (4096, 50, 2)
    # a known size only adds: the default disk still covers the job of unknown size
    settings = PodSettings.resolve({}, {}, environment="dev", input_bytes=[5 * GIB, None])
    assert (settings.memory_mb, settings.disk_gib) == (4096 + 64 * 5, 50)


def test_an_unsized_job_does_not_throw_away_the_sizes_that_are_known() -> None:
    """One input S3 would not size (a HEAD refused, a job with nothing to download) must not
    shrink the pod below what the known inputs need: 100 GiB of downloads do not fit the
    default 50 GiB work volume, nor their conversion the memory floor, and the pod would be
    evicted or OOM-killed hours later, on every retry."""
    known = PodSettings.resolve({}, {}, environment="dev", input_bytes=[100 * GIB])
    partly = PodSettings.resolve({}, {}, environment="dev", input_bytes=[100 * GIB, None])

    assert partly.disk_gib >= known.disk_gib == 3 * 100 + 2
    assert partly.memory_mb >= known.memory_mb == 4096 + 64 * 100


def test_parameters_win_over_the_connection_extra_which_wins_over_sizing() -> None:
    extra = {"job_memory_mb": 8000, "job_cpu": "4", "job_image": "r.example/job:9"}
    params = {"memory_mb": 9000, "cpu": None, "image": None, "disk_gib": ""}

    settings = PodSettings.resolve(params, extra, environment="dev", input_bytes=[GIB])

    assert (settings.memory_mb, settings.cpu, settings.image) == (9000, 4, "r.example/job:9")
    assert settings.disk_gib == 10  # the floor, sized from 1 GiB of input


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cpu": "two"}, "cpu must be a whole number, got 'two'"),
        ({"memory_mb": 0}, "memory_mb must be a positive whole number, got 0"),
        ({"disk_gib": "1.5"}, "disk_gib must be a whole number"),
        ({"cpu": True}, "cpu must be a positive whole number"),
        ({"credentials_secret": "Bad_Name"}, "credentials_secret must be a Kubernetes name"),
        ({"service_account_name": "a b"}, "service_account_name must be a Kubernetes name"),
        ({"image": "img; rm -rf /"}, "image must be an image reference"),
    ],
)
def test_malformed_settings_are_named(params: dict[str, Any], message: str) -> None:
    with pytest.raises(KubernetesSettingsError, match=re.escape(message)):
        PodSettings.resolve(params, {}, environment="dev")


def fake_hca_archive(directory: Path, body: str) -> dict[str, str]:
    """``hca-archive`` on PATH as a script doing ``body``; the environment to run the job in."""
    script = directory / "hca-archive"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(stat.S_IRWXU)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}


def run_job_script(tmp_path: Path, body: str, *args: str) -> tuple[int, str]:
    """The pod's command with the result file moved into ``tmp_path``, run there, so that a
    ``touch pwned`` the script let through lands where the tests look for it."""
    result = tmp_path / "return.json"
    script = JOB_SCRIPT.replace(RESULT_FILE, str(result))
    assert script != JOB_SCRIPT
    done = subprocess.run(
        ["/bin/sh", "-c", script, "hca-archive-job", *args],
        env=fake_hca_archive(tmp_path, body),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, result.read_text() if result.exists() else ""


def test_the_job_script_passes_its_words_verbatim_and_keeps_stdout(tmp_path: Path) -> None:
    body = 'for word in "$@"; do printf "%s\\n" "$word"; done; echo "progress" >&2'
    words = ("run-job", "--plan", "$(touch pwned)", "a b;`id`")

    status, result = run_job_script(tmp_path, body, *words)

    assert status == 0
    assert result.splitlines() == list(words)
    assert not (tmp_path / "pwned").exists()


def test_the_job_script_succeeds_when_a_result_was_written_despite_failed_jobs(
    tmp_path: Path,
) -> None:
    status, result = run_job_script(tmp_path, "echo '{\"failed\": 1}'; exit 1")

    assert (status, json.loads(result)) == (0, {"failed": 1})


def test_the_job_script_fails_when_the_job_left_no_result(tmp_path: Path) -> None:
    status, result = run_job_script(tmp_path, "echo 'error: missing credentials' >&2; exit 2")

    assert status != 0
    assert result == ""


def test_without_the_package_installed_the_image_must_be_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with pytest.raises(KubernetesSettingsError, match="extra job_image"):
        PodSettings.resolve({}, {}, environment="dev")
    assert PodSettings.resolve({}, {"job_image": "r/j:1"}, environment="dev").image == "r/j:1"


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_the_job_script_as_pid_1_passes_sigterm_on_to_the_job(tmp_path: Path) -> None:
    """In the pod the script is the container's PID 1, where a signal without a handler is
    dropped: the kubelet's SIGTERM (pod deleted on kill, ``activeDeadlineSeconds``, eviction)
    must reach ``hca-archive``, which then ends its job as failed and writes its result, rather
    than running on until the SIGKILL of the grace period cuts an upload off."""
    unshare = shutil.which("unshare")
    probe = [unshare or "unshare", "--user", "--map-root-user", "--pid", "--fork", "true"]
    if unshare is None or subprocess.run(probe, capture_output=True, check=False).returncode:
        pytest.skip("no unprivileged PID namespaces here")
    started = tmp_path / "started"
    fake = tmp_path / "hca-archive"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, signal, sys, time\n"
        "def stop(signum, frame):\n"
        '    print(\'{"stopped": "%s"}\' % signal.Signals(signum).name, flush=True)\n'
        "    sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    fake.chmod(stat.S_IRWXU)
    result = tmp_path / "return.json"
    script = JOB_SCRIPT.replace(RESULT_FILE, str(result))
    command = [*probe[:-1], "/bin/sh", "-c", script, "hca-archive-job", "run-job"]
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    container = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the job never started"
        (pid_1,) = _children(container.pid)  # the shell, PID 1 of the new PID namespace
        os.kill(pid_1, signal.SIGTERM)  # as the container runtime signals a container
        status = container.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("SIGTERM to the job script (PID 1) did not stop the job")
    finally:
        if container.poll() is None:
            os.killpg(container.pid, signal.SIGKILL)
            container.wait()
    assert status == 0  # a result was written: the task names the stopped job
    assert json.loads(result.read_text()) == {"stopped": "SIGTERM"}
