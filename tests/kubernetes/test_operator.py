"""KubernetesFileJobOperator through the real KubernetesPodOperator, against a fake cluster."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from hca_archive.archiving import batch_label
from hca_archive.filejob.credentials import ENVIRONMENT_NAMES
from hca_archive.orchestration.runners.kubernetes import KubernetesFileJobOperator, pod_name
from hca_archive.plan import PlanError
from tests.kubernetes.conftest import (
    NAMESPACE,
    SECRET_VALUES,
    FakeKubernetes,
    context,
    hostile_job,
    plan_job,
    pushed,
    result_document,
)

LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


def operator(batch: list[dict[str, Any]], **kwargs: Any) -> KubernetesFileJobOperator:
    return KubernetesFileJobOperator(
        task_id="run_kubernetes",
        batch=batch,
        environment="sandbox",
        **{"memory_mb": 4096, "disk_gib": 20, **kwargs},  # no S3 to size from
    )


def defer(op: KubernetesFileJobOperator, ctx: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    return deferred.value


def resume(deferred: TaskDeferred, batch: list[dict[str, Any]], ctx: dict[str, Any], event: Any):
    """As Airflow resumes a deferred task: a fresh operator, the method the deferral named."""
    return operator(batch).resume_execution(deferred.method_name, {"event": event}, ctx)


def success_event(cluster: FakeKubernetes) -> dict[str, Any]:
    (created,) = cluster.created
    return {"status": "success", "name": created["metadata"]["name"], "namespace": NAMESPACE}


def strings(document: Any) -> list[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(document, dict):
        return [text for key, value in document.items() for text in (key, *strings(value))]
    if isinstance(document, list):
        return [text for value in document for text in strings(value)]
    return [document] if isinstance(document, str) else []


def test_defers_then_the_resumed_task_returns_the_result(cluster: FakeKubernetes) -> None:
    batch = [plan_job()]
    ctx = context(map_index=3)

    deferred = defer(operator(batch), ctx)

    assert deferred.method_name == "trigger_reentry"
    assert callable(getattr(KubernetesFileJobOperator, deferred.method_name))
    (created,) = cluster.created
    name = created["metadata"]["name"]
    assert name == pod_name("archive_submission", "run_kubernetes", ctx["run_id"], 3)
    assert created["metadata"]["namespace"] == NAMESPACE  # the connection's
    assert deferred.trigger.pod_name == name
    assert pushed(ctx, "pod_name") == [name]
    assert pushed(ctx, "step") == []  # not done yet
    assert ctx["job_label"] == batch_label(batch)  # the mapped task's name in the UI

    cluster.finish(name, result_document(batch))
    result = resume(deferred, batch, ctx, success_event(cluster))

    assert result == result_document(batch)
    assert cluster.log_reads == [name]  # the job's output came into the task log
    assert cluster.deleted == [name]
    (step,) = pushed(ctx, "step")
    assert step["state"] == "succeeded"
    assert step["outcome"].endswith("1 job(s) archived in Kubernetes")


def test_the_pod_created_carries_no_secret_and_valid_labels(cluster: FakeKubernetes) -> None:
    ctx = context(dag_id="Dag With Spaces", run_id="manual__$(id)__" + "é" * 80, map_index=1023)

    defer(operator([plan_job()]), ctx)

    (created,) = cluster.created
    for text in strings(created):
        assert not any(secret in text for secret in SECRET_VALUES)
    for container in created["spec"]["containers"]:
        for variable in container.get("env", []):
            assert "value" not in variable or variable["name"] in PLAIN, variable["name"]
    labels = created["metadata"]["labels"]
    assert labels["map_index"] == "1023"
    assert {"dag_id", "task_id", "run_id", "try_number"} <= labels.keys()
    for value in labels.values():
        assert len(value) <= 63
        assert re.match(LABEL_VALUE, value), value
    (sidecar,) = [c for c in created["spec"]["containers"] if c["name"] != "base"]
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}


# The job's settings that are no secret, as the connections (conftest) give them: the pod talks
# to the DAG's services whatever its Secret holds. The aws connection names no region.
PLAIN = {
    "HCA_AAP_URL": "http://127.0.0.1:1/aap",
    "HCA_DSP_URL": "http://127.0.0.1:1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}


def job_env(cluster: FakeKubernetes) -> tuple[dict[str, str], set[str]]:
    """The job container's plain values and the names it takes from the Secret."""
    (created,) = cluster.created
    (job,) = [c for c in created["spec"]["containers"] if c["name"] == "base"]
    plain = {v["name"]: v["value"] for v in job["env"] if "value" in v}
    return plain, {v["name"] for v in job["env"] if "valueFrom" in v}


def test_settings_that_are_no_secret_come_from_the_connections(
    cluster: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the worker's own region: a pod is not an LSF node, and the Secret may name one."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    defer(operator([plan_job()]), context())
    plain, referenced = job_env(cluster)
    assert plain == PLAIN
    assert referenced == set(ENVIRONMENT_NAMES.values()) - PLAIN.keys()


def test_an_address_with_credentials_in_it_is_left_to_the_secret(
    cluster: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = "AIRFLOW_CONN_HCA_SANDBOX_DSP"
    dsp = json.loads(os.environ[variable])
    dsp["host"] = f"http://archiver:{SECRET_VALUES[0]}@127.0.0.1:1"
    monkeypatch.setenv(variable, json.dumps(dsp))
    defer(operator([plan_job()]), context())
    plain, referenced = job_env(cluster)
    assert "HCA_DSP_URL" not in plain and "HCA_DSP_URL" in referenced
    assert not any(SECRET_VALUES[0] in value for value in plain.values())


def test_an_error_event_while_the_pod_runs_defers_again_to_this_operator(
    cluster: FakeKubernetes,
) -> None:
    batch = [plan_job()]
    ctx = context()
    first = defer(operator(batch), ctx)
    event = {**success_event(cluster), "status": "error", "message": "watch broke"}
    cluster.pods[event["name"]].status = k8s.V1PodStatus(phase="Pending")  # not done yet

    with pytest.raises(TaskDeferred) as again:
        resume(first, batch, ctx, event)

    assert callable(getattr(KubernetesFileJobOperator, again.value.method_name))
    assert again.value.trigger.pod_name == event["name"]
    assert cluster.deleted == []
    assert pushed(ctx, "step") == []


def test_failed_jobs_fail_the_task_naming_them(cluster: FakeKubernetes) -> None:
    batch = [plan_job("m-ok"), plan_job("m-bad", bucket="b-2")]
    ctx = context()
    deferred = defer(operator(batch), ctx)
    cluster.finish(success_event(cluster)["name"], result_document(batch, failed=True))

    with pytest.raises(AirflowException, match=r"2 file job\(s\) failed: m-ok/m-ok.bam: upload"):
        resume(deferred, batch, ctx, success_event(cluster))

    (step,) = pushed(ctx, "step")
    assert step["state"] == "failed"


def test_a_pod_that_left_no_result_fails_the_task(cluster: FakeKubernetes) -> None:
    batch = [plan_job()]
    ctx = context()
    deferred = defer(operator(batch), ctx)
    event = success_event(cluster)
    cluster.finish(event["name"], None, exit_code=2)

    with pytest.raises(AirflowException, match="returned a failure"):
        resume(deferred, batch, ctx, {**event, "status": "failed", "message": "failed"})


def test_a_pod_gone_before_the_task_resumed_fails_it(cluster: FakeKubernetes) -> None:
    batch = [plan_job()]
    ctx = context()
    deferred = defer(operator(batch), ctx)
    event = success_event(cluster)
    cluster.pods.clear()

    with pytest.raises(AirflowException, match="without a result JSON"):
        resume(deferred, batch, ctx, event)


def test_a_retry_adopts_a_pod_that_already_finished(cluster: FakeKubernetes) -> None:
    batch = [plan_job()]
    defer(operator(batch), context())
    cluster.finish(success_event(cluster)["name"], result_document(batch))
    ctx = context()
    ctx["ti"].try_number = 2  # the pod is found by its labels, whatever try made it

    result = operator(batch).execute(ctx)  # no deferral: KPO saw the job container had ended

    assert result == result_document(batch)
    assert len(cluster.created) == 1


def test_on_kill_deletes_the_pod(cluster: FakeKubernetes) -> None:
    op = operator([plan_job()])
    defer(op, context())

    op.on_kill()

    assert cluster.deleted == [success_event(cluster)["name"]]


def test_unsized_jobs_are_sized_with_the_environments_keys(
    monkeypatch: pytest.MonkeyPatch, connections: None
) -> None:
    """The one collaborator stubbed here is the S3 sizer (tests/lsf/test_sizes.py asks a moto
    server): the operator hands it the environment's keys."""
    asked: list[dict[str, str]] = []

    def input_bytes(job: Any, credentials: dict[str, str]) -> int:
        asked.append(credentials)
        return 100 * 2**30 if job.manifest_id == "big" else 2**30

    monkeypatch.setattr("hca_archive.orchestration.lsf.sizes.s3_input_bytes", input_bytes)
    op = KubernetesFileJobOperator(
        task_id="run_kubernetes",
        batch=[plan_job("big"), plan_job("small", bucket="b-2")],
        environment="sandbox",
    )

    pod = op.pod_request(context())

    limits = pod.spec.containers[0].resources.limits
    assert limits["memory"] == f"{4096 + 64 * 100}Mi"
    assert pod.spec.volumes[1].empty_dir.size_limit == f"{3 * 101 + 2}Gi"
    assert asked and asked[0]["AWS_SECRET_ACCESS_KEY"] == SECRET_VALUES[1]
    for text in strings(ApiClient().sanitize_for_serialization(pod)):
        assert not any(secret in text for secret in SECRET_VALUES)


def test_credentials_that_cannot_be_read_leave_the_default_sizes(
    monkeypatch: pytest.MonkeyPatch, connections: None
) -> None:
    """Sizing is best effort: an AWS connection the hook cannot use (say, one set up to assume
    a role) gives the pod the default memory and disk, not a failed task."""

    def unusable(self: Any) -> dict[str, str]:
        raise RuntimeError("cannot assume role arn:aws:iam::1:role/x")

    monkeypatch.setattr(
        "hca_archive.orchestration.hooks.HcaArchiveHook.file_job_credentials", unusable
    )
    op = KubernetesFileJobOperator(
        task_id="run_kubernetes", batch=[plan_job("big")], environment="sandbox"
    )

    pod = op.pod_request(context())

    assert pod.spec.containers[0].resources.limits["memory"] == "4096Mi"
    assert pod.spec.volumes[1].empty_dir.size_limit == "50Gi"


def test_the_batch_is_never_rendered_as_a_template(cluster: FakeKubernetes) -> None:
    batch = [plan_job("m {{ 7 * 7 }}")]
    assert "batch" not in KubernetesFileJobOperator.template_fields
    op = operator(batch)

    op.render_template_fields({"ds": "2026-11-29"})

    assert op.batch == batch
    assert op.batch[0]["manifest_id"] == "m {{ 7 * 7 }}"


def test_a_batch_with_shell_syntax_in_a_name_never_creates_a_pod(cluster: FakeKubernetes) -> None:
    batch = [plan_job("m-ok"), hostile_job()]

    with pytest.raises(PlanError) as refused:
        operator(batch).execute(context())

    problems = refused.value.problems
    assert all(p.startswith("job 1 (manifest m1;$(touch pwned)") for p in problems), problems
    for field in ("manifest_id", "files[0].name", "conversion.output_name"):
        assert any(f"): {field}: contains shell metacharacters" in p for p in problems), problems
    read1 = "): conversion.inputs[0].name: contains shell metacharacters $ ( )"
    assert any(p.endswith(read1) for p in problems), problems
    assert cluster.created == []


def test_importing_the_runner_leaves_the_provider_and_client_unloaded() -> None:
    code = (
        "import sys, airflow.sdk\n"
        "before = set(sys.modules)\n"
        "import hca_archive.orchestration.runners.kubernetes\n"
        "added = sorted(set(sys.modules) - before)\n"
        "heavy = [m for m in added if m.split('.')[0] == 'kubernetes'"
        " or m.startswith('airflow.providers.cncf')]\n"
        "print(heavy, 'kubernetes' in sys.modules,"
        " 'airflow.providers.cncf.kubernetes.operators.pod' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split("\n")[-2] == "[] False False"


def test_the_pod_link_is_pushed_only_when_the_connection_names_a_pod_page(
    cluster: FakeKubernetes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(map_index=2)
    defer(operator([plan_job()]), ctx)
    assert pushed(ctx, "file_job_url") == []

    kubernetes = {
        "conn_type": "kubernetes",
        "extra": {
            "namespace": NAMESPACE,
            "job_pod_url": "https://console.example.org/ns/{namespace}/pods/{pod}",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_HCA_SANDBOX_KUBERNETES", json.dumps(kubernetes))
    ctx = context(map_index=2)
    defer(operator([plan_job()]), ctx)
    name = pod_name("archive_submission", "run_kubernetes", ctx["run_id"], 2)
    assert pushed(ctx, "file_job_url") == [
        f"https://console.example.org/ns/{NAMESPACE}/pods/{name}"
    ]


def test_a_retry_does_not_adopt_a_pod_that_ran_another_batch(cluster: FakeKubernetes) -> None:
    """The pod is found by (dag, run, task, map index) alone. When the plan changed under that
    key (the run cleared from fetch_plan while an old pod was left, say with the triggerer
    down), the pod left over ran other jobs: its result must not pass for this batch's, or
    this batch's files would never be uploaded while the task succeeds."""
    old = [plan_job("m-old")]
    defer(operator(old), context())
    finished = cluster.finish(success_event(cluster)["name"], result_document(old))
    new = [plan_job("m-new", bucket="b-2")]

    with pytest.raises(AirflowException, match=r"runs another batch") as refused:
        operator(new).execute(context())

    assert finished.metadata.name in str(refused.value)
    assert len(cluster.created) == 1
