"""docker-compose.yaml: valid against the Compose Specification, complete and free of secrets.

Docker cannot run here, so the file is checked statically. The schema in compose_spec/ is the
Compose Specification's JSON schema as vendored by check-jsonschema 0.39.0 (PyPI wheel,
``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, sha256 d549057e...0e64; licence
Apache-2.0, in compose_spec/LICENSE). On top of the schema: the services of the official Airflow
file plus the sandbox and hpc, healthchecks, declared volumes, existing mounts, real Airflow
options, and secrets only by ``${...}`` from the uncommitted .env.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).parent / "compose_spec" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
COMPOSE_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-1",
    "airflow-worker-2",
    "sandbox",
    "hpc",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}")
# What every Airflow component must share; compose reads each from .env.
AIRFLOW_SECRETS = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
)
# The stand-ins of services outside Airflow: they get none of its settings or secrets.
STAND_INS = ("sandbox", "hpc")
AIRFLOW_OPTION = re.compile(r"^AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_example() -> dict[str, str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def container_environment(service: dict[str, Any]) -> set[str]:
    """The names a service's container gets: its environment and every name of an env_file .env
    (as filled in from .env.example)."""
    names = set(service.get("environment", {}))
    for file in service.get("env_file", []):
        if (file["path"] if isinstance(file, dict) else file) == ".env":
            names |= set(env_example())
    return names


def test_the_vendored_schema_is_the_published_one() -> None:
    import hashlib

    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert errors == []


def test_the_schema_check_catches_a_wrong_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["redis"]["healtcheck"] = broken["services"]["redis"].pop("healthcheck")
    schema = json.loads(SCHEMA.read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_every_component_is_there(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == COMPOSE_SERVICES
    assert {key for key in compose if not key.startswith("x-")} <= {
        "name",
        "services",
        "volumes",
        "networks",
        "secrets",
        "configs",
    }


def test_every_service_has_an_image_and_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert "image" in service or "build" in service, name
        if name == "airflow-init":
            assert service["healthcheck"] == {"disable": True}
        else:
            assert service["healthcheck"]["test"], name


def test_dependencies_and_namespaces_name_existing_services(compose: dict[str, Any]) -> None:
    known = set(services(compose))
    for name, service in services(compose).items():
        depends_on = service.get("depends_on", {})
        assert set(depends_on) <= known, (name, depends_on)
        for target, condition in depends_on.items():
            wanted = (
                "service_completed_successfully" if target == "airflow-init" else "service_healthy"
            )
            assert condition["condition"] == wanted, (name, target)
        if "network_mode" in service:
            assert service["network_mode"] == "service:sandbox", name
            assert "sandbox" in depends_on, f"{name} joins the sandbox's namespace before it exists"


def test_every_airflow_component_is_wired_to_postgres_redis_and_the_sandbox(
    compose: dict[str, Any],
) -> None:
    components = [
        name for name in services(compose) if name.startswith("airflow-") and name != "airflow-init"
    ]
    assert len(components) == 6
    for name in components:
        service = services(compose)[name]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
        assert "hca_archive.devstack.with_sandbox" in service["entrypoint"], name
        assert {"postgres", "redis", "sandbox", "hpc", "airflow-init"} <= set(service["depends_on"])
    worker_names = {
        services(compose)[name]["command"][
            services(compose)[name]["command"].index("--celery-hostname") + 1
        ]
        for name in ("airflow-worker-1", "airflow-worker-2")
    }
    assert len(worker_names) == 2, "the two workers need distinct Celery hostnames"


def test_named_volumes_are_declared_and_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).is_dir(), f"{name} mounts missing {source}"
            else:
                used.add(source)
    assert used == declared
    dockerfile = services(compose)["sandbox"]["build"]["dockerfile"]
    assert (REPO / dockerfile).is_file()


def test_airflow_options_are_real_settings(compose: dict[str, Any]) -> None:
    from airflow.configuration import conf

    options = conf.configuration_description  # core's and the installed providers'
    for name, service in services(compose).items():
        for key in service.get("environment", {}):
            if match := AIRFLOW_OPTION.match(key):
                section, option = (part.lower() for part in match.groups())
                known = options.get(section, {}).get("options", {})
                assert option in known, f"{name}: {key} is no Airflow option"


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    text = (REPO / "docker-compose.yaml").read_text()
    for name, service in services(compose).items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert INTERPOLATION.fullmatch(str(value)), f"{name}: {key} is a literal"
            for credentials in re.findall(r"://[^:/@\s]+:([^@\s]+)@", str(value)):
                assert INTERPOLATION.fullmatch(credentials), f"{name}: {key} embeds a password"
        for file in service.get("env_file", []):
            assert file["path"] == ".env"
    for secret in AIRFLOW_SECRETS:
        assert not re.search(rf"^\s*{secret}[:=]\s*[^$\s]", text, re.MULTILINE), secret


def test_compose_refuses_to_start_without_the_shared_airflow_secrets(
    compose: dict[str, Any],
) -> None:
    """Left empty in .env, the JWT secret did not stop ``docker compose up``: every component then
    signs with a random key of its own (Airflow only warns) and the API server refuses every
    task's token, so every task fails. An empty Fernet key stores connections and variables
    unencrypted. Each must be a required interpolation, as POSTGRES_PASSWORD already is."""
    for name, service in services(compose).items():
        if not name.startswith("airflow-"):
            continue
        for secret in AIRFLOW_SECRETS:
            value = str(service["environment"].get(secret, ""))
            assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", value), f"{name}: {secret}={value!r}"


def test_only_the_services_that_use_a_secret_are_given_it(compose: dict[str, Any]) -> None:
    """``env_file: .env`` gave every container all of .env: POSTGRES_PASSWORD reached each
    Airflow component and from the workers every local file job (run-job is kept from the
    ``AIRFLOW_`` names only), and the sandbox and the hpc login node, stand-ins of services
    outside Airflow whose LSF jobs run as sshd's user, held the JWT secret, the Fernet key and
    the database's URL with its password."""
    for name, service in services(compose).items():
        names = container_environment(service)
        if name != "postgres":
            assert "POSTGRES_PASSWORD" not in names, name
        if name in STAND_INS:
            airflow = sorted(n for n in names if n.startswith("AIRFLOW") or SECRET_NAME.search(n))
            assert airflow == [], f"{name} gets {airflow}"


def test_every_component_has_a_visibility_timeout_beyond_the_file_job_limit(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """As Airflow's celery provider reads the compose environment: Redis must not hand a file
    job to a second worker while the first may still run it (the provider's default is 24 hours,
    a runner lets a job run 48)."""
    from hca_archive.orchestration.file_job_results import FILE_JOB_TIME_LIMIT
    from tests.scaleout.conftest import celery_config

    environments: dict[str, dict[str, str]] = {}
    for name, service in services(compose).items():
        if name.startswith("airflow-") and name != "airflow-init":
            env = {k: INTERPOLATION.sub("x", str(v)) for k, v in service["environment"].items()}
            environments.setdefault(json.dumps(env, sort_keys=True), {"component": name, **env})
    assert len(environments) == 2  # the workers' and the other components'
    for env in environments.values():
        name = env.pop("component")
        config = celery_config({"PATH": os.environ["PATH"], **env}, tmp_path)
        visibility = config["broker_transport_options"]["visibility_timeout"]
        assert visibility > FILE_JOB_TIME_LIMIT.total_seconds(), name
        assert config["task_acks_late"] is True, name
        assert config["worker_concurrency"] == 4, name


def test_the_scheduler_sends_no_more_tasks_than_the_workers_can_run(
    compose: dict[str, Any],
) -> None:
    """Tasks sent beyond the workers' slots wait in Redis, and one waiting longer than
    ``[scheduler] task_queued_timeout`` (10 minutes) is taken back and sent again, twice, then
    failed without a retry. Three local runs at once (4 run_local tasks each; a sweep starts
    that many) put 12 tasks on 8 slots: behind file jobs of hours, the 4 waiting would fail.
    Parallelism (what the executor sends at once, 32 by default) must not exceed the slots, so
    the rest wait in the scheduler, as scheduled, where nothing times out."""
    workers = [s for name, s in services(compose).items() if name.startswith("airflow-worker-")]
    slots = sum(int(w["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"]) for w in workers)
    assert all("--concurrency" not in w["command"] for w in workers)
    scheduler = services(compose)["airflow-scheduler"]["environment"]
    assert int(scheduler.get("AIRFLOW__CORE__PARALLELISM", 32)) <= slots


def test_the_env_example_names_every_secret_and_holds_none() -> None:
    settings = env_example()
    for required in (
        "POSTGRES_PASSWORD",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    ):
        assert settings[required] == "", f"{required} must be listed, empty"
    assert all(value == "" for key, value in settings.items() if SECRET_NAME.search(key))


def test_the_stand_ins_bypass_the_airflow_entrypoint(compose: dict[str, Any]) -> None:
    """The image's /entrypoint would wait for the database and prefix unknown commands with
    ``airflow``; the sandbox and the hpc node need neither."""
    for name in ("sandbox", "hpc"):
        service = services(compose)[name]
        assert service["entrypoint"] == ["/usr/bin/dumb-init", "--"], name
        assert service["command"][:2] == ["python", "-m"], name


def test_every_service_runs_as_a_user_the_image_knows(compose: dict[str, Any]) -> None:
    """The sandbox, hpc and every Airflow component bypass the image's /entrypoint, which is what
    adds a passwd entry for an arbitrary uid. Any uid but the image's airflow (50000) then breaks
    the stack: /sandbox, /hpc and the work directory are 0755 airflow:0 (no group write), and
    hpc's ``getpass.getuser()`` raises KeyError; sshd cannot log in a user it cannot look up.
    .env.example nevertheless invited setting AIRFLOW_UID to one's own uid."""
    env_example = (REPO / ".env.example").read_text()
    assert "AIRFLOW_UID" not in env_example, ".env.example offers a uid the stack cannot run as"
    for name, service in services(compose).items():
        user = service.get("user")
        if user is not None:
            assert user == "50000:0", f"{name} runs as {user!r}"
