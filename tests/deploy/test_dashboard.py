"""The Grafana dashboard only charts metrics the services export."""

from __future__ import annotations

import json
import re

from tests.deploy.manifests import DEPLOY
from tests.harness import REPO_ROOT

DASHBOARD = json.loads((DEPLOY / "grafana" / "dashboards" / "protoserve.json").read_text(encoding="utf-8"))
SOURCES = "\n".join(p.read_text(encoding="utf-8") for package in ("protoserve_runtime", "inference_svc", "monitoring_svc")
                    for p in (REPO_ROOT / package).rglob("*.py"))


def test_every_charted_metric_is_exported() -> None:
    expressions = [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]
    metrics = {name for expr in expressions for name in re.findall(r"\bprotoserve_[a-z0-9_]+", expr)}
    assert len(metrics) >= 5
    for metric in metrics:
        base = re.sub(r"_(bucket|sum|count)$", "", metric)  # histogram series
        declared = {base, base.removesuffix("_total")}  # prometheus_client adds _total to counters
        assert any(f'"{name}"' in SOURCES for name in declared), f"{metric} is not exported by any service"


def test_panels_have_unique_ids_and_a_datasource_variable() -> None:
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    assert "datasource" in {variable["name"] for variable in DASHBOARD["templating"]["list"]}
