"""The job image: its pins agree with requirements.lock, and the core it runs needs no Airflow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fixtures.paths import REPO_ROOT

DOCKERFILE = REPO_ROOT / "include" / "docker" / "job.Dockerfile"
DOCKERIGNORE = REPO_ROOT / "include" / "docker" / "job.Dockerfile.dockerignore"
LOCK = REPO_ROOT / "requirements.lock"
CORE_MODULES = (
    "hca_archive.filejob.cli",
    "hca_archive.convert",
    "hca_archive.clients",
    "hca_archive.plan",
)
BUILD_ONLY = {"setuptools"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:#.*)?$")


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line.strip().rstrip("\\").strip())
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def dockerfile_pins() -> dict[str, str]:
    words = DOCKERFILE.read_text().replace("\\\n", " ").split()
    return pins([word for word in words if "==" in word])


def core_closure() -> set[str]:
    """The core dependencies of pyproject.toml and everything they need (no extras)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pending = [Requirement(text).name for text in project["dependencies"]]
    seen: set[str] = set()
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def test_every_pin_of_the_image_is_the_locked_version():
    locked = pins(LOCK.read_text().splitlines())
    image = dockerfile_pins()
    assert image, "no name==version pins found in the Dockerfile"
    wrong = {
        name: (version, locked.get(name))
        for name, version in image.items()
        if locked.get(name) != version
    }
    assert wrong == {}, "Dockerfile pin != requirements.lock (pinned, locked)"


def test_the_image_pins_exactly_the_core_dependencies():
    assert set(dockerfile_pins()) - BUILD_ONLY == core_closure()


def test_the_core_imports_no_airflow_and_only_pinned_distributions():
    program = (
        "import json, sys; before = set(sys.modules); "
        f"import {', '.join(CORE_MODULES)}; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [name for name in loaded if name.split(".")[0] in {"airflow", "moto"}] == []
    top_level = {name.split(".")[0] for name in loaded} - set(sys.stdlib_module_names)
    distributions = packages_distributions()
    needed = {
        canonicalize_name(dist) for module in top_level for dist in distributions.get(module, [])
    }
    allowed = set(dockerfile_pins()) | {"hca-archive"}
    assert needed - allowed == set()
    assert "hca-archive" in needed


def test_the_build_context_leaves_out_airflow_glue_and_the_sandbox():
    rules = [
        line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert rules[0] == "*"
    assert "include/hca_archive/orchestration" in rules
    assert "include/hca_archive/sandbox" in rules
    text = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim" in text
    assert re.search(r"^USER (?!root)\S+", text, re.MULTILINE)
    assert 'ENTRYPOINT ["hca-archive"]' in text
