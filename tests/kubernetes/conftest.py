"""A fake Kubernetes API (REST and exec) for the Kubernetes runner, plus plans and contexts."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

ENVIRONMENT = "sandbox"
NAMESPACE = "hca-jobs"
HOSTILE = "m1;$(touch pwned)`id`'\"{{ 7 * 7 }}"
# Values that must never reach a pod spec: Airflow connections and the worker's environment.
SECRET_VALUES = ("pw-Zq7-very-secret", "aws-secret-Xy9-value", "env-secret-Kp4-value")


def plan_job(
    tag: str = "m1 donor+1", bucket: str = "b-1", read1: str = "R1 lane=1@x.fastq.gz"
) -> dict[str, Any]:
    """A valid plan job with unusual (but legal) names."""
    return {
        "dsp_api_url": "http://127.0.0.1:1",
        "submission_url": "http://127.0.0.1:1/api/submissions/sub-1",
        "manifest_id": tag,
        "files": [{"name": f"{tag}.bam"}],
        "conversion": {
            "output_name": f"{tag}.bam",
            "schema": "10xV2",
            "inputs": [
                {
                    "name": read1,
                    "read_index": "read1",
                    "cloud_url": f"s3://{bucket}/R1",
                },
                {"name": "R2.fastq.gz", "read_index": "read2", "cloud_url": f"s3://{bucket}/R2"},
            ],
        },
    }


def hostile_job(bucket: str = "b-1") -> dict[str, Any]:
    """A job whose names would do harm in a shell or a template. The operator refuses it (plan.py
    refuses shell syntax); ``build_pod_request`` alone does not validate, so it shows that even
    such names never reach the pod's command or environment."""
    return plan_job(HOSTILE, bucket, read1="R1 $(id).fastq.gz")


def result_document(batch: list[dict[str, Any]], *, failed: bool = False) -> dict[str, Any]:
    """What ``run-job`` prints for ``batch``."""
    jobs = []
    for index, job in enumerate(batch):
        label = f"{job['manifest_id']}/{job['conversion']['output_name']}"
        entry = {"index": index, "manifest_id": job["manifest_id"], "label": label}
        if failed:
            entry.update(status="failed", error="upload: DSP said 500", files=[])
        else:
            files = [{"name": job["files"][0]["name"], "bytes": 10, "md5": "0" * 32}]
            entry.update(status="succeeded", error=None, files=files)
        jobs.append(entry)
    failures = len(jobs) if failed else 0
    return {"jobs": jobs, "succeeded": len(jobs) - failures, "failed": failures}


def context(
    run_id: str = "manual__2026-11-29T13:05:00+00:00",
    map_index: int = 0,
    dag_id: str = "archive_submission",
) -> dict[str, Any]:
    """What the runner and KPO read of an Airflow context; XComs land in ``ti.pushed``."""
    ti = SimpleNamespace(
        dag_id=dag_id,
        run_id=run_id,
        map_index=map_index,
        task_id="run_kubernetes",
        try_number=1,
        start_date=datetime(2026, 11, 29, 13, 5, tzinfo=UTC),
        pushed=[],
    )
    ti.xcom_push = lambda key, value: ti.pushed.append((key, value))
    return {"ti": ti, "run_id": run_id, "dag": SimpleNamespace(dag_id=dag_id)}


def pushed(ctx: dict[str, Any], key: str) -> list[Any]:
    return [value for pushed_key, value in ctx["ti"].pushed if pushed_key == key]


class FakeExec:
    """One exec session into the XCom sidecar: ``cat`` returns the result file, ``kill`` ends."""

    def __init__(self, output: str) -> None:
        self.output = output

    def run_forever(self) -> None:
        pass

    def peek_stderr(self) -> bool:
        return False

    def read_all(self) -> str:
        return self.output

    def is_open(self) -> bool:
        return False

    def close(self) -> None:
        pass


class FakeKubernetes:
    """The cluster as KPO sees it through ``KubernetesHook`` (and its ``CoreV1Api``).

    Pods created are kept as the API server would store them; ``finish`` gives one the state of a
    pod whose job container exited while the XCom sidecar still runs.
    """

    is_in_cluster = False

    def __init__(self) -> None:
        from kubernetes.client import ApiClient

        self.api_client = ApiClient()
        self.core_v1_client = self
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.log_reads: list[str] = []
        self.pods: dict[str, Any] = {}
        self.results: dict[str, str] = {}

    # KubernetesHook
    def get_namespace(self) -> str:
        return NAMESPACE

    def get_xcom_sidecar_container_image(self) -> None:
        return None

    def get_xcom_sidecar_container_resources(self) -> None:
        return None

    def get_xcom_sidecar_container_security_context(self) -> None:
        return None

    def get_pod(self, name: str, namespace: str) -> Any:
        return self.read_namespaced_pod(name, namespace)

    # CoreV1Api
    def create_namespaced_pod(self, body: dict[str, Any], namespace: str, **kwargs: Any) -> Any:
        self.created.append(copy.deepcopy(body))
        self.pods[body["metadata"]["name"]] = self._model(body)
        return self.pods[body["metadata"]["name"]]

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", **kwargs: Any) -> Any:
        """The pods whose labels match ``label_selector`` (=, !=, key, !key), as the API does."""
        pods = [
            pod
            for pod in self.pods.values()
            if pod.metadata.namespace == namespace
            and _selected(pod.metadata.labels or {}, label_selector)
        ]
        return SimpleNamespace(items=pods)

    def read_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        if name not in self.pods:
            raise ApiException(status=404, reason="Not Found")
        return self.pods[name]

    def read_namespaced_pod_log(self, name: str, namespace: str, **kwargs: Any) -> list[bytes]:
        self.log_reads.append(name)
        return [b"2026-11-29 13:06:00 INFO downloading R1 $(id).fastq.gz\n"]

    def patch_namespaced_pod(self, name: str, namespace: str, body: Any, **kwargs: Any) -> None:
        """KPO patches only labels (``already_checked``): merged as a strategic merge would."""
        if name in self.pods:
            labels = body.get("metadata", {}).get("labels", {})
            self.pods[name].metadata.labels = {**(self.pods[name].metadata.labels or {}), **labels}

    def delete_namespaced_pod(self, name: str, namespace: str, *args: Any, **kwargs: Any) -> None:
        self.deleted.append(name)
        self.pods.pop(name, None)

    def connect_get_namespaced_pod_exec(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("exec goes through the stream (exec_stream)")

    def exec_stream(self, method: Any, name: str, namespace: str, **kwargs: Any) -> FakeExec:
        return FakeExec(self.results.get(name, "__airflow_xcom_result_empty__"))

    # test helpers
    def finish(self, name: str, result: dict[str, Any] | None, exit_code: int = 0) -> Any:
        """The job container exited; the sidecar holds ``result`` (None: no result file)."""
        from kubernetes.client import models as k8s

        def status(container: str, state: Any) -> Any:
            return k8s.V1ContainerStatus(
                name=container,
                state=state,
                image="image",
                image_id="image-id",
                ready=False,
                restart_count=0,
            )

        pod = self.pods[name]
        pod.status = k8s.V1PodStatus(
            phase="Running",
            container_statuses=[
                status(
                    "base",
                    k8s.V1ContainerState(
                        terminated=k8s.V1ContainerStateTerminated(exit_code=exit_code)
                    ),
                ),
                status(
                    "airflow-xcom-sidecar",
                    k8s.V1ContainerState(running=k8s.V1ContainerStateRunning()),
                ),
            ],
        )
        if result is not None:
            self.results[name] = json.dumps(result, indent=2)
        return pod

    def _model(self, body: dict[str, Any]) -> Any:
        """The API's answer: the stored pod as a V1Pod."""
        from kubernetes.client import models as k8s

        response = SimpleNamespace(data=json.dumps(body))
        return self.api_client.deserialize(response, k8s.V1Pod)


def _selected(labels: dict[str, str], selector: str) -> bool:
    for requirement in filter(None, selector.split(",")):
        if "!=" in requirement:
            key, value = requirement.split("!=", 1)
            matched = labels.get(key) != value
        elif "=" in requirement:
            key, value = requirement.split("=", 1)
            matched = labels.get(key) == value
        elif requirement.startswith("!"):
            matched = requirement[1:] not in labels
        else:
            matched = requirement in labels
        if not matched:
            return False
    return True


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox environment's connections, holding secrets; the worker's env holds one too."""
    kubernetes = {"conn_type": "kubernetes", "extra": {"namespace": NAMESPACE}}
    dsp = {
        "conn_type": "http",
        "host": "http://127.0.0.1:1",
        "login": "archiver",
        "password": SECRET_VALUES[0],
        "extra": {"aap_url": "http://127.0.0.1:1/aap"},
    }
    aws = {
        "conn_type": "aws",
        "login": "AKIAFAKEKEY",
        "password": SECRET_VALUES[1],
        "extra": {"endpoint_url": "http://127.0.0.1:9"},
    }
    for service, document in (("kubernetes", kubernetes), ("dsp", dsp), ("aws", aws)):
        variable = f"AIRFLOW_CONN_HCA_{ENVIRONMENT.upper()}_{service.upper()}"
        monkeypatch.setenv(variable, json.dumps(document))
    monkeypatch.setenv("HCA_AAP_PASSWORD", SECRET_VALUES[2])


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, connections: None) -> FakeKubernetes:
    """The one stubbed collaborator: the Kubernetes API behind KPO's hook and exec stream."""
    from airflow.providers.cncf.kubernetes.operators import pod as pod_module
    from airflow.providers.cncf.kubernetes.utils import pod_manager

    fake = FakeKubernetes()
    monkeypatch.setattr(pod_module, "KubernetesHook", lambda **kwargs: fake)
    monkeypatch.setattr(pod_manager, "kubernetes_stream", fake.exec_stream)
    return fake
