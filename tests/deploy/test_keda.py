"""The KEDA overlay: the job workers scale on the jobs stream's consumer group, down to zero, and
the CPU autoscaler it replaces is removed (two autoscalers on one Deployment fight)."""

from __future__ import annotations

import yaml

from protoserve_models.jobs.record import JobKeys
from protoserve_runtime.redis_settings import RedisSettings
from tests.deploy.manifests import DEPLOY, load_yaml_documents

KEDA = DEPLOY / "k8s" / "keda"


def scaled_object() -> dict:
    (document,) = load_yaml_documents(KEDA / "worker-scaledobject.yaml")
    return document


def test_workers_scale_on_the_job_queue_from_zero() -> None:
    document = scaled_object()
    assert document["apiVersion"] == "keda.sh/v1alpha1" and document["kind"] == "ScaledObject"
    spec = document["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    assert spec["minReplicaCount"] == 0 and spec["maxReplicaCount"] >= 1
    keys = JobKeys(RedisSettings().redis_prefix)  # the prefix the manifests run with (the default)
    lag, pending = spec["triggers"]
    for trigger in (lag, pending):
        assert trigger["type"] == "redis-streams"
        meta = trigger["metadata"]
        assert (meta["stream"], meta["consumerGroup"]) == (keys.stream, keys.group)
        assert meta["address"].startswith("redis-0.redis.")
        assert all(isinstance(v, str) for v in meta.values())  # KEDA's metadata is strings only
    assert int(lag["metadata"]["lagCount"]) >= 1 and lag["metadata"]["activationLagCount"] == "0"
    assert int(pending["metadata"]["pendingEntriesCount"]) >= 1


def test_the_overlay_replaces_the_cpu_autoscaler_of_the_workers() -> None:
    kustomization = yaml.safe_load((KEDA / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["..", "worker-scaledobject.yaml"]
    (patch,) = kustomization["patches"]
    assert patch["target"] == {"kind": "HorizontalPodAutoscaler", "name": "worker"}
    assert "$patch: delete" in patch["patch"]
    base = [doc for name in yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"]
            for doc in load_yaml_documents(DEPLOY / "k8s" / name)]
    assert any(d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "worker" for d in base)
