"""Grafana dashboards: valid dashboard JSON whose every query reads a series that exists."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from mirage_operator import metrics
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.config import Config
from mirage_operator.render.dashboards import (
    build_operator_dashboard,
    build_slo_dashboard,
    operator_dashboard,
    slo_dashboard,
    slo_dashboard_uid,
)
from mirage_operator.render.prometheusrule import build_prometheus_rule
from tests.conftest import require_tool

SLIS = {
    "availability": {"preset": {"type": "http-availability"}},
    "latency": {"preset": {"type": "http-latency", "latencyThreshold": "0.3"}},
    "events": {
        "events": {
            "errorQuery": "sum(rate(e_total[{{window}}]))",
            "totalQuery": "sum(rate(t_total[{{window}}]))",
        }
    },
    "raw": {"raw": {"errorRatioQuery": "avg(rate(e_total[{{window}}]))"}},
}
# Grafana's own variables, as Grafana substitutes them before Prometheus sees a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": ".*"}


def _slo(kind: str = "availability", window: str = "30d") -> ServiceLevelObjectiveSpec:
    body = {"service": "checkout", "objective": 99.9, "window": window, "sli": SLIS[kind]}
    return ServiceLevelObjectiveSpec.from_spec(body)


def _exprs(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield target["expr"]


def _series_names(expr: str) -> set[str]:
    """Metric names an expression reads: identifiers outside label matchers, grouping clauses
    and strings, that are not PromQL functions or keywords (all ours have '_' or ':')."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    tokens = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    functions = {
        "sum",
        "max",
        "rate",
        "histogram_quantile",
        "and",
        "or",
        "unless",
        "bool",
    }
    return {t for t in tokens if t not in functions and ("_" in t or ":" in t or t == "ALERTS")}


def _exposed_names() -> set[str]:
    """Every sample name the operator's registry exposes, by the exposition format's rules."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    families: list[Metric] = list(metrics.REGISTRY.collect())
    return {f.name + suffix for f in families for suffix in suffixes[f.type]}


def _load(config_map: dict[str, Any]) -> dict[str, Any]:
    (text,) = config_map["data"].values()
    dashboard: dict[str, Any] = json.loads(text)
    return dashboard


DASHBOARDS = {
    "operator": operator_dashboard(),
    **{
        f"slo-{kind}-{window}": slo_dashboard(
            namespace="shop", slo=_slo(kind, window), slo_name=f"checkout-{kind}"
        )
        for kind in SLIS
        for window in ("7d", "30d")
    },
}


@pytest.mark.parametrize("name", list(DASHBOARDS))
def test_dashboard_json_is_well_formed(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["type"] in {"timeseries", "stat"}
        # Every query goes to the data source the user picks in the variable.
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for variable in re.findall(r"\$(\w+)", target["expr"]):
                assert variable in variables or f"${variable}" in GRAFANA_VARIABLES


def test_operator_dashboard_reads_only_exposed_metrics_and_shows_them_all() -> None:
    exposed = _exposed_names()
    read: set[str] = set()
    for expr in _exprs(operator_dashboard()):
        names = _series_names(expr)
        assert names, expr
        assert names <= exposed, (expr, names - exposed)
        read |= names
    families = {f.name for f in metrics.REGISTRY.collect()}
    shown = {f for f in families if any(name.startswith(f) for name in read)}
    assert shown == families, f"metrics without a panel: {sorted(families - shown)}"


@pytest.mark.parametrize("kind", list(SLIS))
@pytest.mark.parametrize("window", ["7d", "28d", "30d"])
def test_slo_dashboard_reads_the_series_of_its_own_rules(kind: str, window: str) -> None:
    slo = _slo(kind, window)
    rule = build_prometheus_rule(
        name="checkout-x", namespace="shop", slo=slo, slo_name="checkout-x", config=Config()
    )
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    alerts = {r["alert"] for r in rules if "alert" in r}
    dashboard = slo_dashboard(namespace="shop", slo=slo, slo_name="checkout-x")
    for expr in _exprs(dashboard):
        names = _series_names(expr)
        assert names, expr
        assert names <= recorded | {"ALERTS"}, (expr, names - recorded)
        # Each query selects this SLO (in this namespace and window) and no other.
        assert 'mirage_slo="checkout-x"' in expr and 'mirage_namespace="shop"' in expr
        if "ALERTS" in names:
            (pattern,) = re.findall(r'alertname=~"([^"]+)"', expr)
            assert set(pattern.split("|")) == alerts
        else:
            assert f'mirage_window="{window}"' in expr


def test_dashboard_queries_pass_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    exprs = [e for d in DASHBOARDS.values() for e in _exprs(d)]
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(variable, value) for e in exprs]
    # Wrapped as recording rules, so that promtool parses each query.
    rules = [{"record": f"dashboard:query{i}:check", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "config", [Config(), Config(dashboard_labels=(("grafana_dashboard", "yes"), ("team", "sre")))]
)
def test_config_maps_carry_the_dashboard_labels(config: Config) -> None:
    owner = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": "a", "uid": "u"},
    }
    slo_map = build_slo_dashboard(
        name="checkout-a-slo-dashboard",
        namespace="shop",
        slo=_slo(),
        slo_name="checkout-a",
        config=config,
        owner=owner,
    )
    operator_map = build_operator_dashboard(namespace="mirage-system", config=config)
    for config_map in (slo_map, operator_map):
        assert (config_map["apiVersion"], config_map["kind"]) == ("v1", "ConfigMap")
        assert dict(config.dashboard_labels).items() <= config_map["metadata"]["labels"].items()
        (key,) = config_map["data"]
        assert key.endswith(".json")
    assert slo_map["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert _load(slo_map)["uid"] == slo_dashboard_uid(
        namespace="shop", slo_name="checkout-a", window="30d"
    )
    assert _load(operator_map) == operator_dashboard()


def test_slo_dashboard_uids_and_file_names_are_unique() -> None:
    maps = [
        build_slo_dashboard(
            name="d",
            namespace=namespace,
            slo=_slo(window=window),
            slo_name=slo_name,
            config=Config(),
        )
        for namespace in ("shop", "shop-canary")
        for slo_name in ("checkout-a", "checkout-b")
        for window in ("7d", "30d")
    ]
    uids = {_load(m)["uid"] for m in maps}
    files = {next(iter(m["data"])) for m in maps}
    assert len(uids) == len(files) == len(maps)
