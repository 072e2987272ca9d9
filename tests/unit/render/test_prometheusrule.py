"""The PrometheusRule builders: SLO rule sets and a MirageService's custom rules."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.config import Config
from mirage_operator.render.prometheusrule import (
    alert_base_name,
    build_custom_rules,
    build_prometheus_rule,
    rule_count,
)

EVENTS = {
    "errorQuery": 'sum(rate(jobs_failed_total{queue="q"}[{{window}}]))',
    "totalQuery": 'sum(rate(jobs_total{queue="q"}[{{window}}]))',
}
SLIS = {
    "availability": {"preset": {"type": "http-availability"}},
    "latency": {"preset": {"type": "http-latency", "latencyThreshold": "0.25"}},
    "events": {"events": EVENTS},
    "raw": {"raw": {"errorRatioQuery": "1 - avg(avg_over_time(up[{{window}}]))"}},
}
ALERT_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
OWNER = {
    "apiVersion": "mirage.dev/v1alpha1",
    "kind": "ServiceLevelObjective",
    "metadata": {"name": "checkout-availability", "uid": "1234"},
}


def _slo(**spec: Any) -> ServiceLevelObjectiveSpec:
    body = {"service": "checkout", "objective": 99.9, "sli": SLIS["availability"], **spec}
    return ServiceLevelObjectiveSpec.from_spec(body)


def _build(slo: ServiceLevelObjectiveSpec | None = None, **kwargs: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "name": "checkout-availability",
        "namespace": "shop",
        "slo": slo or _slo(),
        "slo_name": "checkout-availability",
        "config": Config(),
        **kwargs,
    }
    return build_prometheus_rule(**arguments)


def _rules(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def _records(rule: dict[str, Any]) -> dict[str, str]:
    return {r["record"]: r["expr"] for r in _rules(rule) if "record" in r}


def _alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["labels"]["mirage_severity"]: r for r in _rules(rule) if "alert" in r}


def test_object_metadata() -> None:
    rule = _build(owner=OWNER, labels={"extra": "yes"})
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    meta = rule["metadata"]
    assert (meta["name"], meta["namespace"]) == ("checkout-availability", "shop")
    assert meta["labels"]["release"] == "kube-prometheus-stack"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "mirage-operator"
    assert meta["labels"]["extra"] == "yes"
    (ref,) = meta["ownerReferences"]
    assert ref["uid"] == "1234" and ref["kind"] == "ServiceLevelObjective" and ref["controller"]


def test_no_owner_reference_without_owner() -> None:
    assert "ownerReferences" not in _build()["metadata"]


def test_configured_monitoring_labels_win() -> None:
    config = Config(monitoring_labels=(("prometheus", "main"), ("release", "prom")))
    rule = _build(config=config, labels={"release": "mine"})
    assert rule["metadata"]["labels"]["prometheus"] == "main"
    assert rule["metadata"]["labels"]["release"] == "prom"


@pytest.mark.parametrize("kind", list(SLIS))
@pytest.mark.parametrize("window", ["7d", "28d", "30d"])
def test_every_rule_carries_the_identity_and_extra_labels(kind: str, window: str) -> None:
    rule = _build(_slo(sli=SLIS[kind], window=window, labels={"team": "pay"}))
    identity = {
        "mirage_namespace": "shop",
        "mirage_service": "checkout",
        "mirage_slo": "checkout-availability",
        "mirage_window": window,
        "team": "pay",
    }
    for item in _rules(rule):
        assert identity.items() <= item["labels"].items(), item.get("record") or item["alert"]


@pytest.mark.parametrize("kind", list(SLIS))
def test_error_ratio_records_cover_every_alert_window_and_the_period(kind: str) -> None:
    records = _records(_build(_slo(sli=SLIS[kind], window="28d")))
    for window in ALERT_WINDOWS:
        expr = records[f"mirage_slo:sli_error:ratio_rate{window}"]
        assert f"[{window}]" in expr
    assert "[28d]" in records["mirage_slo:sli_error:ratio_period"]
    assert not any("{{" in expr for expr in records.values())


def test_period_ratio_is_traffic_weighted_for_events_and_time_averaged_for_raw() -> None:
    def period(kind: str) -> str:
        records = _records(_build(_slo(sli=SLIS[kind])))
        return records["mirage_slo:sli_error:ratio_period"]

    for kind in ("availability", "latency", "events"):
        assert period(kind).count("sum_over_time(") == 2
    assert period("raw").startswith("avg_over_time(mirage_slo:sli_error:ratio_rate5m")


@pytest.mark.parametrize(
    ("window", "objective"),
    [("30d", 99.9), ("28d", 99.9), ("7d", 99.5), ("30d", 99.95), ("3d", 99.0), ("90d", 99.9)],
)
def test_alert_thresholds_are_scaled_workbook_factors(window: str, objective: float) -> None:
    days = int(window[:-1])
    budget = 1 - objective / 100
    workbook = {"page": [14.4, 6.0], "ticket": [3.0, 1.0]}
    floor = {"page": 2.0, "ticket": 1.0}
    alerts = _alerts(_build(_slo(window=window, objective=objective)))
    for severity, factors in workbook.items():
        pairs = re.findall(r"> \(([0-9.e-]+) \* ([0-9.e-]+)\)", alerts[severity]["expr"])
        # Each factor appears twice: once for the long window, once for the short one.
        got = [float(f) for f, _ in pairs[::2]]
        want = [max(floor[severity], f * min(days, 30) / 30) for f in factors]
        assert got == pytest.approx(want, rel=1e-9)
        assert len(pairs) == 4
        assert [float(b) for _, b in pairs] == pytest.approx([budget] * 4, rel=1e-9)


def test_alert_windows_pair_as_in_the_workbook() -> None:
    alerts = _alerts(_build())

    def windows(expr: str) -> list[str]:
        return re.findall(r"ratio_rate(\w+)\{", expr)

    assert windows(alerts["page"]["expr"]) == ["1h", "5m", "6h", "30m"]
    assert windows(alerts["ticket"]["expr"]) == ["1d", "2h", "3d", "6h"]


@pytest.mark.parametrize(
    ("service", "slo_name", "window", "base"),
    [
        ("checkout", "checkout-availability", "30d", "CheckoutAvailability30d"),
        ("checkout", "latency", "7d", "CheckoutLatency7d"),
        ("checkout", "checkout", "28d", "Checkout28d"),
        ("api-gw", "api-gw-p99_latency", "30d", "ApiGwP99Latency30d"),
    ],
)
def test_alert_base_name(service: str, slo_name: str, window: str, base: str) -> None:
    assert alert_base_name(service=service, slo_name=slo_name, window=window) == base


def test_alert_names_are_unique_per_slo_and_window() -> None:
    names = set()
    for window in ("7d", "30d"):
        for slo_name in ("checkout-availability", "checkout-latency"):
            rule = _build(_slo(window=window), slo_name=slo_name)
            names |= {a["alert"] for a in _alerts(rule).values()}
    assert len(names) == 8


def test_alerting_name_replaces_the_base() -> None:
    alerts = _alerts(_build(_slo(alerting={"name": "PaymentsDown"})))
    assert {a["alert"] for a in alerts.values()} == {
        "PaymentsDownBurnRatePage",
        "PaymentsDownBurnRateTicket",
    }


def test_alert_labels_and_annotations_merge_over_defaults() -> None:
    slo = _slo(
        description="Buyers can pay.",
        alerting={
            "page": {"labels": {"severity": "sev1"}, "annotations": {"runbook_url": "r"}},
            "ticket": {"annotations": {"summary": "mine"}},
        },
    )
    alerts = _alerts(_build(slo))
    assert alerts["page"]["labels"]["severity"] == "sev1"
    assert alerts["ticket"]["labels"]["severity"] == "warning"
    assert alerts["page"]["annotations"]["runbook_url"] == "r"
    assert "summary" in alerts["page"]["annotations"]
    assert alerts["ticket"]["annotations"]["summary"] == "mine"
    assert "Buyers can pay." in alerts["page"]["annotations"]["description"]
    assert "for" not in alerts["page"]


@pytest.mark.parametrize(
    ("alerting", "severities"),
    [
        ({}, {"page", "ticket"}),
        ({"page": {"enabled": False}}, {"ticket"}),
        ({"ticket": {"enabled": False}}, {"page"}),
        ({"page": {"enabled": False}, "ticket": {"enabled": False}}, set()),
    ],
)
def test_disabled_alerts_are_left_out(alerting: dict[str, Any], severities: set[str]) -> None:
    rule = _build(_slo(alerting=alerting))
    assert set(_alerts(rule)) == severities
    assert rule_count(rule) == len(_rules(rule))


def test_metadata_series_values() -> None:
    records = _records(_build(_slo(objective=99.5, window="7d")))
    assert records["mirage_slo:objective:ratio"] == "vector(0.995)"
    assert records["mirage_slo:error_budget:ratio"] == "vector(0.005)"
    assert records["mirage_slo:period:days"] == "vector(7)"


def test_preset_selector_values_are_escaped() -> None:
    slo = _slo(sli={"preset": {"type": "http-availability", "selector": {"route": 'a"b\\c'}}})
    records = _records(_build(slo))
    assert 'route="a\\"b\\\\c"' in records["mirage_slo:sli_error:ratio_rate5m"]


def test_latency_preset_counts_requests_above_the_threshold() -> None:
    records = _records(_build(_slo(sli=SLIS["latency"])))
    expr = records["mirage_slo:sli_errors:rate5m"]
    assert "http_request_duration_seconds_count" in expr
    assert 'le="0.25"' in expr


def test_builder_is_pure() -> None:
    slo = _slo()
    owner = copy.deepcopy(OWNER)
    first = _build(slo, owner=owner)
    assert _build(slo, owner=owner) == first
    assert owner == OWNER
    first["spec"]["groups"][0]["rules"].clear()
    assert _rules(_build(slo))


# --- custom rules ----------------------------------------------------------------------------

CUSTOM = [
    {
        "alert": "QueueBacklog",
        "expr": "jobs_queued > 100",
        "for": "10m",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "backlog"},
    },
    {"record": "checkout:jobs:rate5m", "expr": "sum(rate(jobs_total[5m]))", "labels": {"a": "b"}},
]


def test_custom_rules_object() -> None:
    rule = build_custom_rules(
        service="checkout", namespace="shop", alerts=CUSTOM, config=Config(), owner=OWNER
    )
    assert rule["metadata"]["name"] == "checkout-custom"
    assert rule["metadata"]["namespace"] == "shop"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["ownerReferences"][0]["uid"] == "1234"
    (group,) = rule["spec"]["groups"]
    assert group["rules"] == [
        {
            "alert": "QueueBacklog",
            "expr": "jobs_queued > 100",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {"summary": "backlog"},
        },
        {
            "record": "checkout:jobs:rate5m",
            "expr": "sum(rate(jobs_total[5m]))",
            "labels": {"a": "b"},
        },
    ]


def test_custom_recording_rules_take_no_alert_fields() -> None:
    item = {"record": "x:y", "expr": "1", "for": "5m", "annotations": {"a": "b"}}
    rule = build_custom_rules(service="s", namespace="n", alerts=[item], config=Config())
    assert rule["spec"]["groups"][0]["rules"] == [{"record": "x:y", "expr": "1"}]
