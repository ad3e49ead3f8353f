"""The Dockerfile checked against the code: one final stage per service, versions, health, pins."""

from __future__ import annotations

import importlib
import json
import re
import tomllib

import pytest
from packaging.requirements import Requirement

from protoserve_runtime.services import DEPLOYABLES
from tests.deploy.manifests import SERVICE_SETTINGS, check_command, port_of, service_of
from tests.harness import REPO_ROOT


def stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its (instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8"))
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, args = line.strip().partition(" ")
        if instruction == "FROM":
            current = result.setdefault(args.split(" AS ")[-1].strip(), [])
        current.append((instruction, args.strip()))
    return result


STAGES = stages()


def first(stage: str, instruction: str) -> str:
    return next(args for name, args in STAGES[stage] if name == instruction)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str) -> dict[str, str]:
    lines = (REPO_ROOT / path).read_text(encoding="utf-8").splitlines()
    return {normalized(n): v for n, _, v in (line.partition("==") for line in lines if line and not line.startswith("#"))}


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_each_service_has_a_small_final_stage(service: str) -> None:
    assert first(service, "FROM") == "runtime AS " + service
    command = json.loads(first(service, "CMD"))
    assert service_of(command) == service
    package = DEPLOYABLES[service].rpartition(".")[0]
    version = importlib.import_module(package).__version__
    assert first(service, "ARG") == f"VERSION={version}", "the image label must carry the service's own version"
    assert 'org.opencontainers.image.version="${VERSION}"' in first(service, "LABEL")
    healthcheck = json.loads(first(service, "HEALTHCHECK").partition("CMD ")[2])
    if healthcheck[0] == "protoserve":
        address = first(service, "ENV").split()[0].partition("=")[2]
        assert port_of(check_command(healthcheck).address) == port_of(address)
        assert str(port_of(address)) in first(service, "EXPOSE").split()


def test_final_stages_run_as_a_user_without_build_tools() -> None:
    runtime = STAGES["runtime"]
    assert ("USER", "10001") in runtime
    assert not any(name == "RUN" and ("pip install" in args or "apt-get" in args) for name, args in runtime)
    build = " ".join(args for name, args in STAGES["build"] if name == "RUN")
    assert "pip install -r requirements.lock" in build and "pip uninstall -y grpcio-tools" in build
    assert "requirements-dev.lock" not in build.replace("grep -i '^grpcio-tools==' requirements-dev.lock", "")


def test_runtime_pins_cover_every_dependency_and_leave_dev_tools_out() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert not set(runtime) & set(dev), "a package is pinned twice"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for requirement in map(Requirement, project["dependencies"]):
        assert normalized(requirement.name) in runtime, f"{requirement.name} is a runtime dependency: pin it in requirements.lock"
    for requirement in map(Requirement, project["optional-dependencies"]["dev"]):
        assert normalized(requirement.name) in dev, f"{requirement.name} is a dev dependency: pin it in requirements-dev.lock"
