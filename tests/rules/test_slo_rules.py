"""Every SLO rule set the operator can generate, checked by the real promtool.

``promtool check rules`` and the prometheus-operator schema on each generated PrometheusRule,
and ``promtool test rules`` on synthetic traffic: a fast burn pages within the time the SRE
workbook's arithmetic predicts, a slow burn opens a ticket and never pages, a healthy service
fires nothing, and the budget-remaining series equals the budget left by the counted events.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.config import Config
from mirage_operator.render.prometheusrule import build_custom_rules, build_prometheus_rule
from tests.rules.synthetic import (
    NAMESPACE,
    SERVICE,
    SLI_KINDS,
    Phase,
    Traffic,
    duration,
    input_series,
    promql_labels,
    sli,
    thresholds,
)

# Every kind of allowed window: the shortest (3d), below, at and above the workbook's 30 days.
WINDOWS = ("3d", "7d", "14d", "28d", "30d", "90d")
OBJECTIVE = 99.9
EXTRA_LABELS = {"team": "payments"}


def _slo_name(kind: str) -> str:
    return f"{SERVICE}-{kind}"


def _build(
    kind: str,
    window: str,
    *,
    namespace: str = NAMESPACE,
    slo_name: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body = {
        "service": SERVICE,
        "objective": OBJECTIVE,
        "window": window,
        "sli": sli(kind),
        "labels": EXTRA_LABELS,
        **spec,
    }
    name = slo_name or _slo_name(kind)
    return build_prometheus_rule(
        name=name,
        namespace=namespace,
        slo=ServiceLevelObjectiveSpec.from_spec(body),
        slo_name=name,
        config=Config(),
    )


def _rules(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def _check(promtool: str, groups: list[dict[str, Any]], tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _validate(rule: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.Draft4Validator(schema).validate(rule)


# --- promtool check rules + schema -----------------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "named-alerts": {"alerting": {"name": "CheckoutPayments"}},
    "page-only": {"alerting": {"ticket": {"enabled": False}}},
    "ticket-only": {"alerting": {"page": {"enabled": False}}},
    "custom-alert-metadata": {
        "description": 'Checkout "pay" button works',
        "alerting": {
            "page": {
                "labels": {"severity": "sev1", "route": "pagerduty"},
                "annotations": {"runbook_url": "https://runbooks.example/slo?x={{ $labels.team }}"},
            },
            "ticket": {"annotations": {"summary": "{{ $value | humanizePercentage }} errors"}},
        },
    },
}


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("kind", SLI_KINDS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_generated_rules_pass_promtool_and_the_schema(
    promtool: str,
    prometheusrule_schema: dict[str, Any],
    tmp_path: Path,
    kind: str,
    window: str,
    variant: str,
) -> None:
    rule = _build(kind, window, **VARIANTS[variant])
    _validate(rule, prometheusrule_schema)
    out = _check(promtool, rule["spec"]["groups"], tmp_path)
    assert f"SUCCESS: {len(_rules(rule))} rules found" in out


@pytest.mark.parametrize(
    "selector",
    [
        {"service": 'we"ird\\name'},
        {"service": "checkout", "namespace": "shop", "handler": "/api/v1/{id}"},
    ],
)
@pytest.mark.parametrize("preset", ["http-availability", "http-latency"])
def test_preset_selectors_are_quoted_safely(
    promtool: str, tmp_path: Path, selector: dict[str, str], preset: str
) -> None:
    body = {
        "service": SERVICE,
        "objective": 99.5,
        "sli": {
            "preset": {
                "type": preset,
                "selector": selector,
                "metric": "app_requests" if preset == "http-latency" else "app_requests_total",
                "statusLabel": "status",
                "errorStatusRegex": "5\\d\\d|429",
                "latencyThreshold": "1e-1",
            }
        },
    }
    rule = build_prometheus_rule(
        name="x",
        namespace=NAMESPACE,
        slo=ServiceLevelObjectiveSpec.from_spec(body),
        slo_name="x",
        config=Config(),
    )
    _check(promtool, rule["spec"]["groups"], tmp_path)


def test_several_slos_for_one_service_load_side_by_side(
    promtool: str, prometheusrule_schema: dict[str, Any], tmp_path: Path
) -> None:
    # Two SLOs of one service, the same SLO in two windows (Sloth #488) and a same-named SLO
    # in another namespace, all in one Prometheus.
    objects = [
        _build("availability", "30d"),
        _build("latency", "30d"),
        _build("events", "30d", slo_name="checkout-jobs"),
        _build("availability", "7d", slo_name="checkout-availability-weekly"),
        _build("availability", "30d", namespace="shop-canary"),
        _build("raw", "28d", namespace="shop-canary", slo_name="checkout-jobs"),
    ]
    for rule in objects:
        _validate(rule, prometheusrule_schema)
    groups = [g for rule in objects for g in rule["spec"]["groups"]]
    # One file: promtool rejects duplicate group names within it.
    _check(promtool, groups, tmp_path)
    # Distinct namespaces get distinct files anyway, but within a namespace alert names must
    # differ per SLO and per window.
    for namespace in {NAMESPACE, "shop-canary"}:
        names = [
            r["alert"]
            for rule in objects
            if rule["metadata"]["namespace"] == namespace
            for r in _rules(rule)
            if "alert" in r
        ]
        assert len(names) == len(set(names)), Counter(names).most_common(2)
    # No two rules anywhere write the same series (metric name and label set).
    series = Counter(
        (r["record"], tuple(sorted(r["labels"].items())))
        for rule in objects
        for r in _rules(rule)
        if "record" in r
    )
    assert series.most_common(1)[0][1] == 1


def test_custom_rules_pass_promtool_and_the_schema(
    promtool: str, prometheusrule_schema: dict[str, Any], tmp_path: Path
) -> None:
    alerts: list[dict[str, Any]] = [
        {
            "alert": "CheckoutQueueBacklog",
            "expr": "sum(jobs_queued{queue='checkout'}) > 100",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {"summary": "{{ $value }} jobs queued"},
        },
        {"record": "checkout:jobs:rate5m", "expr": "sum(rate(jobs_total[5m]))"},
    ]
    rule = build_custom_rules(service=SERVICE, namespace=NAMESPACE, alerts=alerts, config=Config())
    _validate(rule, prometheusrule_schema)
    out = _check(promtool, rule["spec"]["groups"], tmp_path)
    assert "SUCCESS: 2 rules found" in out


# --- promtool test rules ---------------------------------------------------------------------


def _series_labels(slo_name: str, window: str) -> dict[str, str]:
    """The labels every series of an SLO built by :func:`_build` must carry."""
    return {
        "mirage_namespace": NAMESPACE,
        "mirage_service": SERVICE,
        "mirage_slo": slo_name,
        "mirage_window": window,
        **EXTRA_LABELS,
    }


def _alert_labels(slo_name: str, window: str, severity: str) -> dict[str, str]:
    """What the page/ticket alert must carry: the series labels and the severity defaults."""
    return {
        **_series_labels(slo_name, window),
        "severity": {"page": "critical", "ticket": "warning"}[severity],
        "mirage_severity": severity,
    }


def _alert(rule: dict[str, Any], severity: str) -> dict[str, Any]:
    (alert,) = [r for r in _rules(rule) if r.get("labels", {}).get("mirage_severity") == severity]
    return alert


class Scenario:
    """One promtool test group: traffic, and the checks to make on it."""

    def __init__(
        self,
        rule: dict[str, Any],
        kind: str,
        window: str,
        traffic: Traffic,
        *,
        with_errors: bool = True,
    ) -> None:
        self.rule = rule
        self.slo_name = _slo_name(kind)
        self.window = window
        self.traffic = traffic
        self.group: dict[str, Any] = {
            "interval": "1m",
            "input_series": input_series(kind, traffic, with_errors=with_errors),
            "alert_rule_test": [],
            "promql_expr_test": [],
        }
        self.series_labels = _series_labels(self.slo_name, window)

    def alert(self, severity: str, at: int, *, firing: bool) -> None:
        """The ``severity`` alert is (or is not) firing at minute ``at``."""
        alert = _alert(self.rule, severity)
        labels = _alert_labels(self.slo_name, self.window, severity)
        # The annotations are the rule's own: what is under test is when, and with what labels.
        expected = [{"exp_labels": labels, "exp_annotations": alert["annotations"]}]
        expected = expected if firing else []
        self.group["alert_rule_test"].append(
            {"eval_time": duration(at), "alertname": alert["alert"], "exp_alerts": expected}
        )

    def close_to(self, series: str, at: int, value: float, tolerance: float) -> None:
        """``series`` of this SLO is within ``tolerance`` of ``value`` at minute ``at``."""
        selector = promql_labels(
            {k: self.series_labels[k] for k in ("mirage_slo", "mirage_window")}
        )
        expr = f"abs({series}{selector} - ({value!r})) <= bool {tolerance!r}"
        self.group["promql_expr_test"].append(
            {
                "expr": expr,
                "eval_time": duration(at),
                "exp_samples": [{"labels": promql_labels(self.series_labels), "value": 1}],
            }
        )


def _run(promtool: str, rule: dict[str, Any], scenarios: list[Scenario], tmp_path: Path) -> None:
    _run_groups(promtool, rule, [s.group for s in scenarios], tmp_path)


def _run_groups(
    promtool: str, rule: dict[str, Any], groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    """``promtool test rules`` with the rule's groups and these test groups."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    test_file = tmp_path / "test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": groups}
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


RPS = 10.0


def _budget_checks(scenario: Scenario, budget: float) -> None:
    end = scenario.traffic.duration
    expected = scenario.traffic.budget_remaining(end, budget=budget)
    # The period ratio is built from 5m rates, which weigh the last five minutes of events
    # less: over a window of days that is nothing, over a test of hours it bounds the error at
    # 5m / history of the budget burned.
    tolerance = 0.01 + abs(1 - expected) * 5 / end
    scenario.close_to("mirage_slo:error_budget_remaining:ratio", end, expected, tolerance)


# The burn-rate factors depend on the window only, the SLI recording rules on the kind only:
# every window with one kind, and every kind at a short and the default window (promtool's
# evaluation of hours of traffic is ~14 s of CPU a case; the full cross product doubled it).
BURN_CASES = [("availability", w) for w in WINDOWS] + [
    (k, w) for k in SLI_KINDS if k != "availability" for w in ("7d", "30d")
]


@pytest.mark.parametrize(("kind", "window"), BURN_CASES)
def test_burn_rate_alerts_on_synthetic_traffic(
    promtool: str, tmp_path: Path, kind: str, window: str
) -> None:
    days = int(window[:-1])
    budget = 1 - OBJECTIVE / 100
    rule = _build(kind, window)
    page = thresholds("page", days, budget)
    ticket = thresholds("ticket", days, budget)
    # The model itself: every threshold is at least the budget, and every page threshold above
    # every ticket threshold, so that a slow burn can ticket without paging.
    assert min(limit for _, _, limit in ticket) >= budget
    assert min(limit for _, _, limit in page) > max(limit for _, _, limit in ticket[1:])
    scenarios = []

    # Fast burn: an error ratio six times the 1h page threshold after an hour of health; the
    # 1h window crosses the threshold after about 10 minutes.
    healthy_ratio = min(limit for _, _, limit in ticket) / 2
    start = 60
    fast = Traffic((Phase(start, RPS, healthy_ratio), Phase(90, RPS, page[0][2] * 6)))
    expected = fast.first_firing("page", window_days=days, budget=budget)
    assert expected is not None and expected > start
    margin = 3
    s = Scenario(rule, kind, window, fast)
    s.alert("page", start, firing=False)
    s.alert("ticket", start, firing=False)
    s.alert("page", expected - margin, firing=False)
    s.alert("page", expected + margin, firing=True)
    _budget_checks(s, budget)
    scenarios.append(s)

    # Slow burn: 80% of the lowest page threshold after three healthy hours: a ticket, never a
    # page.
    slow_ratio = min(limit for _, _, limit in page) * 0.8
    assert slow_ratio > max(limit for _, _, limit in ticket[1:])
    start = 180
    slow = Traffic((Phase(start, RPS, healthy_ratio), Phase(180, RPS, slow_ratio)))
    expected = slow.first_firing("ticket", window_days=days, budget=budget)
    assert (
        expected is not None and slow.first_firing("page", window_days=days, budget=budget) is None
    )
    margin = max(5, (expected - start) // 5)
    s = Scenario(rule, kind, window, slow)
    s.alert("ticket", expected - margin, firing=False)
    s.alert("ticket", expected + margin, firing=True)
    for at in range(start, slow.duration + 1, 30):
        s.alert("page", at, firing=False)
    _budget_checks(s, budget)
    scenarios.append(s)

    # Just within budget: a steady 0.9x the budget's error ratio for seven hours (longer than
    # every short window and the 6h long window) meets the objective: nothing fires.
    end = 420
    within = 0.9 * budget
    healthy = Traffic((Phase(end, RPS, within),))
    s = Scenario(rule, kind, window, healthy)
    for at in (10, 65, 125, 365, end):
        s.alert("page", at, firing=False)
        s.alert("ticket", at, firing=False)
    s.close_to("mirage_slo:error_budget_remaining:ratio", end, 1 - within / budget, 1e-3)
    s.close_to("mirage_slo:objective:ratio", end, OBJECTIVE / 100, 1e-12)
    s.close_to("mirage_slo:error_budget:ratio", end, budget, 1e-12)
    s.close_to("mirage_slo:period:days", end, days, 0)
    s.close_to("mirage_slo:period_burn_rate:ratio", end, within / budget, 1e-3)
    s.close_to("mirage_slo:current_burn_rate:ratio", end, within / budget, 1e-3)
    scenarios.append(s)

    if kind in ("availability", "events"):
        # No error has ever happened, so the error counter does not exist: still a full budget.
        clean = Traffic((Phase(120, RPS, 0.0),))
        s = Scenario(rule, kind, window, clean, with_errors=False)
        s.alert("page", 120, firing=False)
        s.close_to("mirage_slo:error_budget_remaining:ratio", 120, 1.0, 1e-9)
        s.close_to("mirage_slo:sli_error:ratio_rate5m", 120, 0.0, 1e-9)
        scenarios.append(s)

    _run(promtool, rule, scenarios, tmp_path)


def test_two_slos_of_one_service_alert_independently(promtool: str, tmp_path: Path) -> None:
    # Latency burns fast while availability is healthy: only the latency SLOs page, in both of
    # their windows, each under its own alert name.
    budget = 1 - OBJECTIVE / 100
    cases = [  # (slo name, kind, window, burning)
        (_slo_name("availability"), "availability", "30d", False),
        (_slo_name("latency"), "latency", "30d", True),
        ("checkout-latency-weekly", "latency", "7d", True),
    ]
    objects = [_build(kind, window, slo_name=name) for name, kind, window, _ in cases]
    traffic = Traffic((Phase(30, RPS, 0.0), Phase(60, RPS, 0.5)))
    group: dict[str, Any] = {
        "interval": "1m",
        "input_series": input_series("availability", Traffic((Phase(90, RPS, 0.0),)))
        + input_series("latency", traffic),
        "alert_rule_test": [],
    }
    for rule, (name, _, window, burning) in zip(objects, cases, strict=True):
        alert = _alert(rule, "page")
        expected = traffic.first_firing("page", window_days=int(window[:-1]), budget=budget)
        assert expected is not None
        exp = [
            {
                "exp_labels": _alert_labels(name, window, "page"),
                "exp_annotations": alert["annotations"],
            }
        ]
        group["alert_rule_test"].append(
            {
                "eval_time": duration(expected + 3),
                "alertname": alert["alert"],
                "exp_alerts": exp if burning else [],
            }
        )
    assert len({_alert(o, "page")["alert"] for o in objects}) == len(objects)
    merged = {"spec": {"groups": [g for o in objects for g in o["spec"]["groups"]]}}
    _run_groups(promtool, merged, [group], tmp_path)
