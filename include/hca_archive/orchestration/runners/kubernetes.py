"""Run a batch of plan jobs in one Kubernetes pod, deferring while it runs.

The pod (built by :func:`build_pod_request`, started by a deferrable ``KubernetesPodOperator``):

- runs the job image (``hca-archive`` as its entrypoint, a non-root user) as
  ``sh -c 'hca-archive "$@" > /airflow/xcom/return.json ...'`` (:data:`JOB_SCRIPT`, which also
  passes the kubelet's SIGTERM on to the job: the shell is PID 1 and would drop it)
  with fixed words only: ``run-job --plan /plan/plan.json --workdir /work --threads N``. The
  script is a constant and ``"$@"`` is never re-parsed, so no plan value meets a shell. A result
  written means the job told its story (failed jobs included): the pod succeeds and the task
  fails naming each failed job; no result (bad credentials, a crash) fails the pod, and its log
  tail is the termination message.
- reads the plan (the batch, untrusted and possibly large) from a file: the pod's annotation
  ``hca-archive.ebi.ac.uk/plan`` projected by a downward API volume. Nothing to create or clean
  up (no ConfigMap, no extra RBAC); it is not in argv or the environment. Annotations hold 256 KiB
  in all, so a batch is limited to :data:`MAX_PLAN_BYTES`.
- gets its credentials from the Kubernetes Secret ``hca-archive-<environment>-credentials``
  (keys named like the job's environment variables, ``filejob.credentials.ENVIRONMENT_NAMES``)
  through ``secretKeyRef`` only: no secret value passes through Airflow or the pod spec. What is
  no secret and the environment's connections know (the AAP, DSP and S3 addresses, the AWS
  region) is set as plain values, so the pod talks to the same services as the DAG and the
  Secret need not repeat them.
- returns the result JSON through KPO's XCom sidecar (``/airflow/xcom/return.json``); its
  progress (stderr) comes into the task log.
- is named from (dag, run, map index): at most one pod per mapped job exists at a time, and a
  retry reattaches to a pod still running (KPO's ``durable`` reconnection).
- is stopped by Kubernetes after ``FILE_JOB_TIME_LIMIT`` of running (``activeDeadlineSeconds``):
  Airflow applies no ``execution_timeout`` while a task is deferred, so a job that hangs would
  otherwise hold its pod and its task for ever.

The cncf provider and the ``kubernetes`` client are imported only when a task runs: importing
them costs seconds, which DAG parsing must not pay.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException

from hca_archive.filejob.credentials import ENVIRONMENT_NAMES, REQUIRED
from hca_archive.job_image import release_job_image
from hca_archive.lsf import resources
from hca_archive.orchestration.connections import conn_id
from hca_archive.orchestration.extra_links import FileJobLink, push_file_job_url
from hca_archive.orchestration.file_job_results import (
    FILE_JOB_TIME_LIMIT,
    check_result,
    label_task,
)
from hca_archive.orchestration.step_record import recorded_step
from hca_archive.plan import PlanJob, parse_plan

if TYPE_CHECKING:
    from kubernetes.client import models as k8s

JOB_USER_ID = 10001  # the image's ``hca`` user (include/docker/job.Dockerfile)
BASE_CONTAINER = "base"  # KPO's name for the container whose logs and exit status count
PLAN_ANNOTATION = "hca-archive.ebi.ac.uk/plan"
PLAN_DIR = "/plan"
WORK_DIR = "/work"
RESULT_FILE = "/airflow/xcom/return.json"  # KPO's XCom sidecar reads it
MAX_PLAN_BYTES = 200 * 1024
# The container's PID 1, where a signal without a handler is dropped: the script passes the
# kubelet's SIGTERM (and SIGINT) on to the job, which then ends its job as failed and writes its
# result. Only a result written, or a clean exit, makes the pod succeed.
JOB_SCRIPT = (
    f'hca-archive "$@" > {RESULT_FILE} & child=$!\n'
    "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT\n"
    'wait "$child"; status=$?\n'
    'while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done\n'
    f'[ "$status" -eq 0 ] || test -s {RESULT_FILE}\n'
)
DEFAULT_CPU = 2
DEFAULT_DISK_GIB = 50  # when the input sizes are unknown
DISK_FLOOR_GIB = 10
DISK_PER_INPUT = 3  # downloads + BAM + slack, per byte of input
DISK_MARGIN_GIB = 2
TMP_GIB = 1
EXTRA_PREFIX = "job_"  # keys of the Kubernetes connection's extra that this runner reads
SIZED = ("memory_mb", "disk_gib")  # settings sized from the inputs when not given
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")


class KubernetesSettingsError(ValueError):
    """A parameter or connection extra for the Kubernetes runner is malformed; names which."""


def default_image() -> str:
    """The job image of this release of hca-archive."""
    if (image := release_job_image()) is None:
        raise KubernetesSettingsError(
            "no job image: hca-archive is not installed, so set the image parameter or the "
            "Kubernetes connection's extra job_image"
        )
    return image


def credentials_secret_name(environment: str) -> str:
    return f"hca-archive-{environment}-credentials"


def pod_name(dag_id: str, task_id: str, run_id: str, map_index: int) -> str:
    """A DNS-1123 label (<= 63 chars) unique to the mapped task instance: readable prefix,
    exact hash."""
    ids = [dag_id, task_id, run_id, map_index]
    digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:10]
    tail = f"-{map_index}-{digest}" if map_index >= 0 else f"-{digest}"
    slug = re.sub(r"[^a-z0-9]+", "-", f"hca-{dag_id}-{run_id}".lower())
    return slug[: 63 - len(tail)].rstrip("-") + tail


def disk_gib(input_bytes: int | None) -> int:
    """Work volume for a batch downloading ``input_bytes`` in all (unknown: the default)."""
    if input_bytes is None:
        return DEFAULT_DISK_GIB
    return max(DISK_FLOOR_GIB, math.ceil(DISK_PER_INPUT * input_bytes / 2**30) + DISK_MARGIN_GIB)


@dataclass(frozen=True)
class PodSettings:
    """What the pod runs and asks for; build with :meth:`resolve`."""

    image: str
    credentials_secret: str
    cpu: int
    memory_mb: int
    disk_gib: int
    service_account_name: str | None = None
    # settings that are no secret, as (environment variable, value), from the connections
    plain_env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def resolve(
        cls,
        params: Mapping[str, Any],
        extra: Mapping[str, Any],
        *,
        environment: str,
        input_bytes: Sequence[int | None] = (),
        plain_env: Mapping[str, str] | None = None,
    ) -> PodSettings:
        """From ``params`` (operator arguments; None = unset), then ``job_*`` extras, then
        defaults; memory follows the largest job's inputs, disk their sum (jobs of a batch run
        one after the other in one work directory). A job of unknown size gets the defaults,
        but never less than the known sizes need."""

        def pick(name: str, default: Any = None) -> Any:
            value = params.get(name)
            if not _given(value):
                value = extra.get(f"{EXTRA_PREFIX}{name}")
            return value if _given(value) else default

        known = bool(input_bytes) and None not in input_bytes
        sizes = [size for size in input_bytes if size is not None]
        # memory_mb(None) is the floor, which the largest known size can only raise
        memory = pick("memory_mb", resources.memory_mb(max(sizes, default=None)))
        needed = disk_gib(sum(sizes)) if sizes else 0
        disk = pick("disk_gib", needed if known else max(disk_gib(None), needed))
        account = pick("service_account_name")
        return cls(
            image=_image(pick("image") or default_image()),
            credentials_secret=_dns_name(
                pick("credentials_secret", credentials_secret_name(environment)),
                "credentials_secret",
            ),
            cpu=_positive(pick("cpu", DEFAULT_CPU), "cpu"),
            memory_mb=_positive(memory, "memory_mb"),
            disk_gib=_positive(disk, "disk_gib"),
            service_account_name=None
            if account is None
            else _dns_name(account, "service_account_name"),
            plain_env=tuple(sorted((plain_env or {}).items())),
        )


def container_security() -> k8s.V1SecurityContext:
    """For the job and the XCom sidecar: unprivileged, read-only root, no capabilities."""
    from kubernetes.client import models as k8s

    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        privileged=False,
        run_as_non_root=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )


def build_pod_request(
    batch: list[dict[str, Any]], *, name: str, environment: str, settings: PodSettings
) -> k8s.V1Pod:
    """The pod running ``batch``: see the module docstring. Namespace: the connection's."""
    from kubernetes.client import models as k8s

    plan = json.dumps({"jobs": batch}, separators=(",", ":"))
    if len(plan) > MAX_PLAN_BYTES:
        raise KubernetesSettingsError(
            f"the batch's plan is {len(plan)} bytes; a pod annotation carries at most "
            f"{MAX_PLAN_BYTES}: run fewer jobs per task"
        )
    memory = f"{settings.memory_mb}Mi"
    storage = f"{settings.disk_gib + TMP_GIB + 1}Gi"  # + /tmp + container logs
    amounts = {"cpu": str(settings.cpu), "memory": memory, "ephemeral-storage": storage}
    container = k8s.V1Container(
        name=BASE_CONTAINER,
        image=settings.image,
        command=["/bin/sh", "-c", JOB_SCRIPT, "hca-archive-job"],
        args=[
            "run-job",
            "--plan",
            f"{PLAN_DIR}/plan.json",
            "--workdir",
            WORK_DIR,
            "--threads",
            str(settings.cpu),
        ],
        env=[
            *(k8s.V1EnvVar(name=name, value=value) for name, value in settings.plain_env),
            *(
                _secret_env(settings.credentials_secret, variable)
                for variable in ENVIRONMENT_NAMES.values()
                if variable not in dict(settings.plain_env)
            ),
        ],
        resources=k8s.V1ResourceRequirements(requests=amounts, limits=dict(amounts)),
        volume_mounts=[
            k8s.V1VolumeMount(name="plan", mount_path=PLAN_DIR, read_only=True),
            k8s.V1VolumeMount(name="work", mount_path=WORK_DIR),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),  # noqa: S108 - a private emptyDir
        ],
        security_context=container_security(),
        termination_message_policy="FallbackToLogsOnError",
    )
    plan_file = k8s.V1DownwardAPIVolumeFile(
        path="plan.json",
        field_ref=k8s.V1ObjectFieldSelector(
            field_path=f"metadata.annotations['{PLAN_ANNOTATION}']"
        ),
    )
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=name,
            labels={
                "app.kubernetes.io/name": "hca-archive",
                "app.kubernetes.io/component": "file-job",
                "hca-archive.ebi.ac.uk/environment": environment,
            },
            annotations={PLAN_ANNOTATION: plan},
        ),
        spec=k8s.V1PodSpec(
            containers=[container],
            restart_policy="Never",
            active_deadline_seconds=int(FILE_JOB_TIME_LIMIT.total_seconds()),
            automount_service_account_token=False,  # the job never talks to Kubernetes
            enable_service_links=False,
            service_account_name=settings.service_account_name,
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=JOB_USER_ID,
                run_as_group=JOB_USER_ID,
                fs_group=JOB_USER_ID,
                seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
            ),
            volumes=[
                k8s.V1Volume(
                    name="plan", downward_api=k8s.V1DownwardAPIVolumeSource(items=[plan_file])
                ),
                k8s.V1Volume(
                    name="work",
                    empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=f"{settings.disk_gib}Gi"),
                ),
                k8s.V1Volume(
                    name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=f"{TMP_GIB}Gi")
                ),
            ],
        ),
    )


class KubernetesFileJobOperator(BaseOperator):
    """Runs ``hca-archive run-job`` for a batch of plan jobs in a pod; returns its result JSON.

    A thin shell around a deferrable ``KubernetesPodOperator`` built when the task runs: KPO
    defers asking Airflow to resume with ``trigger_reentry``, which Airflow calls on *this*
    operator; it rebuilds the same KPO and hands the event on.

    :param batch: plan jobs (``fileUploadPlan`` entries), run one after the other in one pod.
    :param environment: deployment environment; names the connection ``hca_<env>_kubernetes``
        (the cluster, for KPO; its extra may set ``job_image``, ``job_cpu``, ``job_memory_mb``,
        ``job_disk_gib``, ``job_credentials_secret``, ``job_service_account_name``, and
        ``job_pod_url``, a pod's web page with ``{namespace}`` and ``{pod}`` in it, for the
        "LSF job / pod" link) and the default credentials Secret ``hca-archive-<env>-credentials``.
    :param image, cpu, memory_mb, disk_gib, credentials_secret, service_account_name: override
        the connection's extra. Unset memory and disk are sized from the jobs' inputs (S3 HEAD
        with the environment's AWS connection), or defaults when they cannot be read.
    """

    template_fields = ("environment", "image", "cpu", "memory_mb", "disk_gib")
    ui_color = "#e8fdf0"
    operator_extra_links = (FileJobLink(),)

    def __init__(
        self,
        *,
        batch: list[dict[str, Any]],
        environment: str,
        kubernetes_conn_id: str | None = None,
        image: str | None = None,
        cpu: int | None = None,
        memory_mb: int | None = None,
        disk_gib: int | None = None,
        credentials_secret: str | None = None,
        service_account_name: str | None = None,
        poll_interval: float = 10.0,
        logging_interval: int | None = 120,
        startup_timeout_seconds: int = 900,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.environment = environment
        self.kubernetes_conn_id = kubernetes_conn_id
        self.image = image
        self.cpu = cpu
        self.memory_mb = memory_mb
        self.disk_gib = disk_gib
        self.credentials_secret = credentials_secret
        self.service_account_name = service_account_name
        self.poll_interval = poll_interval
        self.logging_interval = logging_interval
        self.startup_timeout_seconds = startup_timeout_seconds
        self._pod_operator: Any = None

    def execute(self, context: Context) -> dict[str, Any]:
        with recorded_step(context) as record:
            label = label_task(context, self.batch)
            pod = self.pod_request(context)
            container = pod.spec.containers[0]
            self.log.info(
                "Starting pod %s: image %s, resources %s",
                pod.metadata.name,
                container.image,
                container.resources.limits,
            )
            self._push_pod_url(context, pod)
            self._pod_operator = self._build_pod_operator(pod)
            # KPO.execute in deferrable mode, without the guard against operators nested by DAG
            # authors (it would warn in every task log); defers unless the pod already ended.
            self._pod_operator.execute_async(context)
            record.outcome = self._conclude(label, self._pod_operator.result, context["ti"])
            return self._pod_operator.result

    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resumed by KPO's trigger (the pod ended, or logs are due): delegate to a same KPO."""
        start = getattr(context["ti"], "start_date", None)
        with recorded_step(context, start.timestamp() if start else None) as record:
            label = label_task(context, self.batch)
            self._pod_operator = self._build_pod_operator(None)
            result = self._pod_operator.trigger_reentry(context, event)  # may defer again
            record.outcome = self._conclude(label, result, context["ti"])
            return result

    def on_kill(self) -> None:
        if self._pod_operator is not None:
            self._pod_operator.on_kill()

    def pod_request(self, context: Context) -> k8s.V1Pod:
        """The pod this task instance runs (validated plan, resolved settings)."""
        plan_jobs = parse_plan({"jobs": self.batch}).jobs  # PlanError names every problem
        params = {
            "image": self.image,
            "cpu": self.cpu,
            "memory_mb": self.memory_mb,
            "disk_gib": self.disk_gib,
            "credentials_secret": self.credentials_secret,
            "service_account_name": self.service_account_name,
        }
        extra = BaseHook.get_connection(self._conn_id()).extra_dejson
        sized = all(
            _given(params[name]) or _given(extra.get(f"{EXTRA_PREFIX}{name}")) for name in SIZED
        )
        settings = PodSettings.resolve(
            params,
            extra,
            environment=self.environment,
            input_bytes=() if sized else self._input_bytes(plan_jobs),
            plain_env=self._plain_env(),
        )
        ti = context["ti"]
        return build_pod_request(
            self.batch,
            name=pod_name(ti.dag_id, ti.task_id, ti.run_id, ti.map_index),
            environment=self.environment,
            settings=settings,
        )

    def _conn_id(self) -> str:
        return self.kubernetes_conn_id or conn_id(self.environment, "kubernetes")

    def _push_pod_url(self, context: Context, pod: k8s.V1Pod) -> None:
        extra = BaseHook.get_connection(self._conn_id()).extra_dejson
        if template := extra.get("job_pod_url"):
            # The namespace as KPO resolves it when the pod request names none.
            namespace = pod.metadata.namespace or extra.get("namespace") or "default"
            url = str(template).replace("{namespace}", namespace)
            push_file_job_url(context["ti"], url.replace("{pod}", pod.metadata.name))

    def _plain_env(self) -> dict[str, str]:
        """The job's settings that are no secret, from the environment's connections; an
        address with a user or password in it is left to the Secret."""
        from urllib.parse import urlsplit

        from hca_archive.orchestration.hooks import HcaArchiveHook

        try:
            settings = HcaArchiveHook(self.environment).file_job_settings()
        except (AirflowNotFoundException, ValueError) as error:
            self.log.warning("the pod takes every setting from its Secret: %s", error)
            return {}
        plain = {}
        for variable, value in settings.items():
            if "@" in urlsplit(value).netloc:
                self.log.warning("%s holds credentials; the pod takes it from its Secret", variable)
            else:
                plain[variable] = value
        return plain

    def _input_bytes(self, plan_jobs: tuple[PlanJob, ...]) -> list[int | None]:
        """Each job's download size, asked of S3 with the environment's AWS connection."""
        from hca_archive.orchestration.hooks import HcaArchiveHook
        from hca_archive.orchestration.lsf.sizes import s3_input_bytes

        try:
            credentials = HcaArchiveHook(self.environment).file_job_credentials()
        except Exception as error:  # sizing is best effort: the pod then gets the defaults
            self.log.warning("cannot size the jobs' inputs: %s", error)
            return [None]
        return [s3_input_bytes(job, credentials) for job in plan_jobs]

    def _build_pod_operator(self, pod: k8s.V1Pod | None) -> Any:
        """The KPO of this task; the same on resume (``pod`` is only needed to create it)."""
        return _pod_operator_class()(
            task_id=self.task_id,
            kubernetes_conn_id=self._conn_id(),
            full_pod_spec=pod,
            random_name_suffix=False,
            base_container_name=BASE_CONTAINER,
            termination_message_policy="FallbackToLogsOnError",
            xcom_sidecar_container_security_context=container_security(),
            do_xcom_push=True,
            get_logs=True,
            deferrable=True,
            poll_interval=self.poll_interval,
            logging_interval=self.logging_interval,
            startup_timeout_seconds=self.startup_timeout_seconds,
            log_pod_spec_on_failure=False,  # the spec holds the plan: long, and not news
            on_finish_action="delete_pod",
            execution_timeout=self.execution_timeout,
        )

    def _conclude(self, label: str, result: Any, ti: Any = None) -> str:
        if not isinstance(result, dict):
            raise AirflowException(
                "the pod ended without a result JSON (removed before it could be read?)"
            )
        check_result(result, self.log, ti)
        return f"{label}: {result.get('succeeded', 0)} job(s) archived in Kubernetes"


@functools.cache
def _pod_operator_class() -> type:
    """KPO keeping what ``trigger_reentry`` returned: when the pod has ended before KPO defers,
    KPO calls it directly and drops its value (``execute`` returns None)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    class FileJobPodOperator(KubernetesPodOperator):
        result: Any = None

        def trigger_reentry(self, context: Context, event: dict[str, Any]) -> Any:
            self.result = super().trigger_reentry(context, event)
            return self.result

        def find_pod(self, namespace: str, context: Context, **kwargs: Any) -> Any:
            """The pod a retry adopts, found by the task instance's labels: refused when it runs
            another batch (the plan changed since it was started), whose result is not ours."""
            pod = super().find_pod(namespace, context, **kwargs)
            if pod is not None and self.pod_request_obj is not None:
                theirs, ours = _plan_of(pod), _plan_of(self.pod_request_obj)
                if theirs != ours:
                    raise AirflowException(
                        f"pod {pod.metadata.name} in {namespace}, left by an earlier try of this "
                        "task, runs another batch than this task's (the plan changed since it "
                        "was started): not adopting it; delete it to run this batch"
                    )
            return pod

    return FileJobPodOperator


def _plan_of(pod: Any) -> Any:
    """The batch a pod runs, as JSON (None when it carries none)."""
    annotations = (pod.metadata.annotations if pod.metadata else None) or {}
    try:
        return json.loads(annotations[PLAN_ANNOTATION])
    except (KeyError, TypeError, ValueError):
        return None


def _secret_env(secret: str, variable: str) -> Any:
    from kubernetes.client import models as k8s

    required = variable in {ENVIRONMENT_NAMES[name] for name in REQUIRED}
    return k8s.V1EnvVar(
        name=variable,
        value_from=k8s.V1EnvVarSource(
            secret_key_ref=k8s.V1SecretKeySelector(name=secret, key=variable, optional=not required)
        ),
    )


def _given(value: Any) -> bool:
    """Whether a setting is set: templated parameters render unset values as empty strings."""
    return value is not None and value != ""


def _image(value: Any) -> str:
    if not isinstance(value, str) or not _IMAGE.match(value):
        raise KubernetesSettingsError(f"image must be an image reference, got {value!r}")
    return value


def _dns_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _DNS_SUBDOMAIN.match(value):
        raise KubernetesSettingsError(
            f"{name} must be a Kubernetes name (lowercase letters, digits, '-', '.'), got {value!r}"
        )
    return value


def _positive(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise KubernetesSettingsError(f"{name} must be a whole number, got {value!r}") from None
    if number <= 0 or isinstance(value, bool) or str(number) != str(value).strip():
        raise KubernetesSettingsError(f"{name} must be a positive whole number, got {value!r}")
    return number
