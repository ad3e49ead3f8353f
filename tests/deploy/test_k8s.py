"""deploy/k8s checked by the Kubernetes JSON schemas (kubernetes-validate, offline) and against the code."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from protoserve_runtime.services import by_name
from tests.deploy.manifests import DEPLOY, SERVICE_SETTINGS, load_yaml_documents, port_of, read_variables, service_of

K8S = DEPLOY / "k8s"
KUSTOMIZATION: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
DOCUMENTS = [doc for name in KUSTOMIZATION["resources"] for doc in load_yaml_documents(K8S / name)]
VERSION = kubernetes_validate.latest_version()


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in DOCUMENTS if doc["kind"] == kind}


DEPLOYMENTS = of_kind("Deployment")
SERVICES = of_kind("Service")


def container(name: str) -> dict[str, Any]:
    containers = DEPLOYMENTS[name]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env(name: str) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(name).get("env", [])}


@pytest.mark.parametrize("index", range(len(DOCUMENTS)))
def test_every_manifest_is_valid_for_kubernetes(index: int) -> None:
    kubernetes_validate.validate(DOCUMENTS[index], VERSION, strict=True)


def test_the_schema_check_rejects_a_wrong_manifest() -> None:
    broken = yaml.safe_load(yaml.safe_dump(DEPLOYMENTS["inference"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "fifty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_one_deployment_per_service_running_its_command_with_known_settings() -> None:
    assert set(DEPLOYMENTS) == set(SERVICE_SETTINGS)
    for name in DEPLOYMENTS:
        spec = container(name)
        assert service_of(spec["command"]) == name
        unknown = set(env(name)) - read_variables(name)
        assert not unknown, f"{name} sets variables it never reads: {sorted(unknown)}"
        assert spec["resources"]["requests"] and spec["resources"]["limits"]
        assert spec["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", ["inference", "explain", "monitoring"])
def test_grpc_services_have_native_grpc_probes_services_and_a_headless_service(name: str) -> None:
    port = port_of(env(name)[by_name(name).address_setting])
    spec = container(name)
    assert {"name": "grpc", "containerPort": port} in spec["ports"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert spec[probe]["grpc"]["port"] == port
    assert SERVICES[name]["spec"]["ports"][0]["targetPort"] == port
    headless = SERVICES[f"{name}-headless"]["spec"]
    assert headless["clusterIP"] == "None" and headless["ports"][0]["port"] == port
    annotations = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port_of(env(name)[f"PROTOSERVE_{name.upper()}_METRICS_ADDRESS"]))


def test_gateway_balances_over_the_headless_services() -> None:
    gateway = env("gateway")
    for variable in ("PROTOSERVE_INFERENCE_ADDRESS", "PROTOSERVE_EXPLAIN_ADDRESS", "PROTOSERVE_MONITORING_ADDRESS"):
        value = gateway[variable]
        assert value.startswith("dns:///")
        host = value.removeprefix("dns:///").rpartition(":")[0]
        assert SERVICES[host]["spec"]["clusterIP"] == "None"
        assert SERVICES[host]["spec"]["ports"][0]["port"] == port_of(value)
    probe = container("gateway")["readinessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": port_of(gateway["PROTOSERVE_GATEWAY_ADDRESS"])}


def test_autoscalers_and_disruption_budgets() -> None:
    autoscaled = {doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind("HorizontalPodAutoscaler").values()}
    assert {"inference", "explain", "worker"} <= autoscaled <= set(DEPLOYMENTS)
    budgets = of_kind("PodDisruptionBudget")
    assert set(budgets) == set(DEPLOYMENTS)
    for name, budget in budgets.items():
        assert budget["spec"]["selector"]["matchLabels"] == DEPLOYMENTS[name]["spec"]["selector"]["matchLabels"]


def test_redis_is_a_stateful_set_with_an_append_only_file_on_a_volume() -> None:
    redis = of_kind("StatefulSet")["redis"]["spec"]
    command = " ".join(redis["template"]["spec"]["containers"][0]["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert redis["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    host = env("inference")["PROTOSERVE_REDIS_URL"].removeprefix("redis://").partition(":")[0]
    assert host.split(".")[-1] == redis["serviceName"] and SERVICES["redis"]["spec"]["clusterIP"] == "None"


def test_prometheus_scrapes_every_service_with_metrics() -> None:
    config = yaml.safe_load(of_kind("ConfigMap")["prometheus-protoserve"]["data"]["prometheus.yml"])
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    annotated = {name for name, d in DEPLOYMENTS.items() if "annotations" in d["spec"]["template"]["metadata"]}
    assert jobs == annotated
