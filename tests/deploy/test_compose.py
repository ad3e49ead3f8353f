"""docker-compose.yml checked against the code: commands, settings, ports, health, start order."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from protoserve_runtime.services import by_name
from tests.deploy.manifests import (
    DEPLOY,
    SERVICE_SETTINGS,
    check_command,
    host_of,
    port_of,
    read_variables,
    service_of,
)
from tests.harness import REPO_ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROTOSERVE = {name: s for name, s in SERVICES.items() if s.get("command", [""])[0] == "protoserve"}


def test_every_protoserve_service_is_deployed() -> None:
    assert set(PROTOSERVE) == set(SERVICE_SETTINGS)
    assert "redis" in SERVICES


@pytest.mark.parametrize("name", sorted(PROTOSERVE))
def test_command_exists_and_sets_only_variables_the_service_reads(name: str) -> None:
    service = PROTOSERVE[name]
    runs = service_of(service["command"])
    assert runs == name, f"compose service {name} runs {runs}"
    env = service.get("environment", {})
    assert isinstance(env, dict) and env, f"{name}: configure it by environment variables"
    unknown = set(env) - read_variables(runs)
    assert not unknown, f"{name} sets variables it never reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(PROTOSERVE))
def test_health_check_and_start_order(name: str) -> None:
    service = PROTOSERVE[name]
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD"
    if test[1] == "protoserve":  # gRPC health on the port the service listens on
        args = check_command(test[1:])
        assert args.command == "health"
        listen = service["environment"][by_name(name).address_setting]
        assert port_of(args.address) == port_of(listen)
    for dependency, condition in service.get("depends_on", {}).items():
        assert dependency in SERVICES
        assert condition == {"condition": "service_healthy"}
        assert "healthcheck" in SERVICES[dependency]


def test_addresses_point_at_services_on_their_ports() -> None:
    """host:port values naming another compose service use the port that service listens on."""
    listening = {
        name: port_of(s["environment"][by_name(name).address_setting])
        for name, s in PROTOSERVE.items() if name != "worker"
    }
    for name, service in PROTOSERVE.items():
        for variable, value in service["environment"].items():
            if isinstance(value, str) and host_of(value) in listening:
                assert port_of(value) == listening[host_of(value)], f"{name}: {variable}={value}"
    published = [p.split(":") for p in SERVICES["gateway"]["ports"]]
    assert [int(container) for _host, container in published] == [listening["gateway"]]


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = SERVICES["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    volume, _, mount = redis["volumes"][0].partition(":")
    assert volume in COMPOSE["volumes"] and mount == "/data"
    for name in ("inference", "worker", "monitoring"):
        assert SERVICES[name]["environment"]["PROTOSERVE_REDIS_URL"].startswith("redis://redis:6379")


def test_replicas_and_scaling() -> None:
    assert SERVICES["inference"]["deploy"]["replicas"] == 2
    for name in ("inference", "worker"):  # scaled with --scale: no fixed container name or host port
        assert "container_name" not in SERVICES[name] and "ports" not in SERVICES[name]


def test_prometheus_scrapes_every_metrics_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    for name, service in PROTOSERVE.items():
        variable = f"PROTOSERVE_{name.upper()}_METRICS_ADDRESS"
        if variable in service["environment"]:
            assert scraped[name]["names"] == [name]
            assert scraped[name]["port"] == port_of(service["environment"][variable])
    assert set(scraped) <= set(PROTOSERVE)


def test_tracing_profile_runs_jaeger_and_every_service_passes_otel_through() -> None:
    """`docker compose --profile tracing up` adds Jaeger with OTLP on 4317; every protoserve service
    takes the OTLP endpoint (and sampler) from the shell, so tracing stays off unless it is given."""
    jaeger = SERVICES["jaeger"]
    assert jaeger["profiles"] == ["tracing"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    assert any(str(port).endswith(":4317") for port in jaeger["ports"])
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    for name, service in PROTOSERVE.items():
        env = service["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", name
        assert env["OTEL_TRACES_SAMPLER"].startswith("${OTEL_TRACES_SAMPLER:-"), name
        assert "jaeger" not in service.get("depends_on", {}), f"{name} must start without the tracing profile"
