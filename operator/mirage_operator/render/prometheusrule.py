"""Builders of PrometheusRules: one per ServiceLevelObjective, one for a MirageService's custom
rules.

Every series an SLO rule set records carries four identity labels (``mirage_namespace``,
``mirage_service``, ``mirage_slo``, ``mirage_window``), and every alert name embeds the service,
the SLO and the window, so that two SLOs (or one SLO in two windows) never write the same series
or share an alert name (the collision of Sloth #488). See docs/adr/0050-slo-burn-rate-alerts.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from mirage_operator.api.alerttemplate import literal
from mirage_operator.api.k8svalidation import label_value
from mirage_operator.api.names import custom_rules_name
from mirage_operator.api.promql import quote
from mirage_operator.api.slo import (
    BURN_RATE_ALERTS,
    PLACEHOLDER,
    RATIO_WINDOWS,
    SEVERITIES,
    EventsSLI,
    PresetSLI,
    RawSLI,
    ServiceLevelObjectiveSpec,
)
from mirage_operator.config import Config
from mirage_operator.render.meta import object_meta, standard_labels

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"

# Identity labels of every generated series and alert.
LABEL_NAMESPACE = "mirage_namespace"
LABEL_SERVICE = "mirage_service"
LABEL_SLO = "mirage_slo"
LABEL_WINDOW = "mirage_window"
LABEL_SEVERITY = "mirage_severity"
"""``page`` or ``ticket`` on each burn-rate alert."""

# Recorded series. The error ratio of window ``w`` is ``ratio_record(w)``; the whole compliance
# window has its own name (not ``..._rate30d``) so that a 3d window cannot clash with the 3d
# alert ratio and dashboards can query every SLO's period ratio with one name.
SERIES_ERRORS_5M = "mirage_slo:sli_errors:rate5m"
SERIES_EVENTS_5M = "mirage_slo:sli_events:rate5m"
SERIES_RATIO_PERIOD = "mirage_slo:sli_error:ratio_period"
SERIES_OBJECTIVE = "mirage_slo:objective:ratio"
SERIES_ERROR_BUDGET = "mirage_slo:error_budget:ratio"
SERIES_PERIOD_DAYS = "mirage_slo:period:days"
SERIES_CURRENT_BURN_RATE = "mirage_slo:current_burn_rate:ratio"
SERIES_PERIOD_BURN_RATE = "mirage_slo:period_burn_rate:ratio"
SERIES_BUDGET_REMAINING = "mirage_slo:error_budget_remaining:ratio"

# Ratios from 1d up are derived from the recorded 5m pair for events-shaped SLIs: sums of one
# series per grouping instead of rates over every raw counter series across days.
_DERIVED_WINDOWS = frozenset({"1d", "3d"})


def ratio_record(window: str) -> str:
    """Name of the recorded error ratio over ``window`` (one of ``RATIO_WINDOWS``)."""
    return f"mirage_slo:sli_error:ratio_rate{window}"


def alert_base_name(*, service: str, slo_name: str, window: str) -> str:
    """Default base of the alert names: service, SLO name (without a repeated service prefix)
    and window in CamelCase, e.g. ``CheckoutAvailability30d``."""
    rest = slo_name
    if rest == service:
        rest = ""
    elif rest.startswith(service + "-"):
        rest = rest[len(service) + 1 :]
    words = re.split(r"[^A-Za-z0-9]+", f"{service}-{rest}-{window}")
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def alert_name(slo: ServiceLevelObjectiveSpec, *, slo_name: str, severity: str) -> str:
    """Name of the ``page`` or ``ticket`` burn-rate alert of an SLO."""
    base = slo.alerting.name or alert_base_name(
        service=slo.service, slo_name=slo_name, window=slo.window
    )
    return f"{base}BurnRate{severity.capitalize()}"


def promql_number(value: float) -> str:
    """A float as PromQL writes it, without float noise (0.001, not 0.0010000000000000009)."""
    text = repr(round(value, 10))
    return text[:-2] if text.endswith(".0") else text


def _matchers(pairs: Sequence[tuple[str, str]], *extra: str) -> str:
    items = [f"{key}={quote(value)}" for key, value in pairs]
    return "{" + ",".join([*items, *extra]) + "}"


def _events_queries(slo: ServiceLevelObjectiveSpec, window: str) -> tuple[str, str] | None:
    """(bad events/s, all events/s) over ``window`` for events-shaped SLIs; ``None`` for raw."""
    sli = slo.sli
    if isinstance(sli, EventsSLI):
        return (
            PLACEHOLDER.sub(window, sli.error_query),
            PLACEHOLDER.sub(window, sli.total_query),
        )
    if isinstance(sli, PresetSLI):
        if sli.type == "http-availability":
            total = f"sum(rate({sli.metric}{_matchers(sli.selector)}[{window}]))"
            status = f"{sli.status_label}=~{quote(sli.error_status_regex)}"
            errors = f"sum(rate({sli.metric}{_matchers(sli.selector, status)}[{window}]))"
            return errors, total
        threshold = f"le={quote(sli.latency_threshold or '+Inf')}"
        total = f"sum(rate({sli.metric}_count{_matchers(sli.selector)}[{window}]))"
        fast = f"sum(rate({sli.metric}_bucket{_matchers(sli.selector, threshold)}[{window}]))"
        return f"({total} - {fast})", total
    return None


def _errors_or_zero(errors: str, total: str) -> str:
    # A counter of errors that never happened has no series: count it as 0 while there is
    # traffic, so that a healthy service has a ratio (and a budget) instead of no data.
    return f"({errors}) or (0 * ({total}))"


def _sli_rules(slo: ServiceLevelObjectiveSpec, identity: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    period = slo.window
    events_5m = _events_queries(slo, "5m")
    if events_5m is not None:
        errors, total = events_5m
        rules.append({"record": SERIES_ERRORS_5M, "expr": _errors_or_zero(errors, total)})
        rules.append({"record": SERIES_EVENTS_5M, "expr": total})
    for window in RATIO_WINDOWS:
        events = _events_queries(slo, window)
        if events is None:
            assert isinstance(slo.sli, RawSLI)
            expr = PLACEHOLDER.sub(window, slo.sli.error_ratio_query)
        elif window in _DERIVED_WINDOWS:
            expr = (
                f"sum_over_time({SERIES_ERRORS_5M}{identity}[{window}])"
                f" / sum_over_time({SERIES_EVENTS_5M}{identity}[{window}])"
            )
        else:
            errors, total = events
            expr = f"({_errors_or_zero(errors, total)}) / ({total})"
        rules.append({"record": ratio_record(window), "expr": expr})
    if events_5m is not None:
        # Traffic-weighted: all bad events over all events in the period.
        period_expr = (
            f"sum_over_time({SERIES_ERRORS_5M}{identity}[{period}])"
            f" / sum_over_time({SERIES_EVENTS_5M}{identity}[{period}])"
        )
    else:
        # A bare ratio carries no traffic to weigh by: the time average is what is left.
        period_expr = f"avg_over_time({ratio_record('5m')}{identity}[{period}])"
    rules.append({"record": SERIES_RATIO_PERIOD, "expr": period_expr})
    return rules


def _metadata_rules(slo: ServiceLevelObjectiveSpec, identity: str) -> list[dict[str, Any]]:
    budget = promql_number(slo.error_budget)
    return [
        {"record": SERIES_OBJECTIVE, "expr": f"vector({promql_number(slo.objective / 100)})"},
        {"record": SERIES_ERROR_BUDGET, "expr": f"vector({budget})"},
        {"record": SERIES_PERIOD_DAYS, "expr": f"vector({slo.window_days})"},
        {
            "record": SERIES_CURRENT_BURN_RATE,
            "expr": f"{ratio_record('5m')}{identity} / {budget}",
        },
        {
            "record": SERIES_PERIOD_BURN_RATE,
            "expr": f"{SERIES_RATIO_PERIOD}{identity} / {budget}",
        },
        {
            "record": SERIES_BUDGET_REMAINING,
            "expr": f"1 - {SERIES_PERIOD_BURN_RATE}{identity}",
        },
    ]


def _alert_rules(
    slo: ServiceLevelObjectiveSpec, *, slo_name: str, identity: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    budget = promql_number(slo.error_budget)
    days = slo.window_days
    defaults = {"page": {"severity": "critical"}, "ticket": {"severity": "warning"}}
    for severity in SEVERITIES:
        settings = slo.alerting.settings(severity)
        if not settings.enabled:
            continue
        pairs = [a for a in BURN_RATE_ALERTS if a.severity == severity]
        conditions = []
        explained = []
        for pair in pairs:
            threshold = f"({promql_number(pair.factor(days))} * {budget})"
            conditions.append(
                f"({ratio_record(pair.long)}{identity} > {threshold}"
                f" and {ratio_record(pair.short)}{identity} > {threshold})"
            )
            explained.append(f"{pair.factor(days):.4g}x over {pair.long} and {pair.short}")
        objective = f"{promql_number(slo.objective)}% over {slo.window}"
        # Prometheus expands alert labels and annotations as templates: what Mirage writes is
        # literal text (a "{{" in a description or a label value stays text); only the user's
        # alert labels and annotations are templates, checked by validation.
        generated = {
            "summary": (
                f"{slo.service}: SLO {slo_name} ({objective}) is burning its error budget "
                f"too fast ({severity})"
            ),
            "description": (
                f"The error ratio of {slo.service} (SLO {slo_name}) has exceeded its error "
                f"budget ({budget}) {', or '.join(explained)}."
                + (f" {slo.description}" if slo.description else "")
            ),
        }
        annotations = {
            **{key: literal(value) for key, value in generated.items()},
            **dict(settings.annotations),
        }
        rules.append(
            {
                "alert": alert_name(slo, slo_name=slo_name, severity=severity),
                "expr": " or ".join(conditions),
                "labels": {
                    **defaults[severity],
                    **{key: literal(value) for key, value in labels.items()},
                    **dict(settings.labels),
                    LABEL_SEVERITY: severity,
                },
                "annotations": annotations,
            }
        )
    return rules


def identity_labels(
    *, namespace: str, slo: ServiceLevelObjectiveSpec, slo_name: str
) -> dict[str, str]:
    """The labels that tell one SLO's series from every other's."""
    return {
        LABEL_NAMESPACE: namespace,
        LABEL_SERVICE: slo.service,
        LABEL_SLO: slo_name,
        LABEL_WINDOW: slo.window,
    }


def series_selector(labels: Mapping[str, str]) -> str:
    """A PromQL label matcher block selecting exactly ``labels``: ``{k="v",...}``."""
    return "{" + ",".join(f"{k}={quote(v)}" for k, v in labels.items()) + "}"


def build_slo_rules(
    *, namespace: str, slo: ServiceLevelObjectiveSpec, slo_name: str
) -> list[dict[str, Any]]:
    """The rule groups of one SLO (the ``spec.groups`` of its PrometheusRule): one group, so
    that each rule sees the series recorded before it at the same evaluation."""
    identity_map = identity_labels(namespace=namespace, slo=slo, slo_name=slo_name)
    identity = series_selector(identity_map)
    series_labels = {**dict(slo.labels), **identity_map}
    recording = _sli_rules(slo, identity) + _metadata_rules(slo, identity)
    for rule in recording:
        rule["labels"] = dict(series_labels)
    alerts = _alert_rules(slo, slo_name=slo_name, identity=identity, labels=series_labels)
    # Unique even if several PrometheusRules end up in one rule file (Thanos, rule exports).
    group = f"mirage-slo-{namespace}-{slo_name}-{slo.window}"
    return [{"name": group, "rules": recording + alerts}]


def rule_count(rule: Mapping[str, Any]) -> int:
    """Number of recording and alerting rules in a PrometheusRule (for ``status.ruleCount``)."""
    return sum(len(group.get("rules", [])) for group in rule["spec"]["groups"])


def _object(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None,
    groups: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": object_meta(name=name, namespace=namespace, labels=labels, owner=owner),
        "spec": {"groups": groups},
    }


def build_prometheus_rule(
    *,
    name: str,
    namespace: str,
    slo: ServiceLevelObjectiveSpec,
    slo_name: str,
    config: Config,
    owner: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The PrometheusRule ``name`` of the SLO ``slo_name``: SLI recording rules, metadata
    series and burn-rate alerts, labelled so that the configured Prometheus selects it."""
    meta_labels = {
        **standard_labels(name=slo.service, component="slo"),
        "mirage.dev/slo": label_value(slo_name),
        **(labels or {}),
        # Last, so that the configured Prometheus always selects the rule.
        **dict(config.monitoring_labels),
    }
    return _object(
        name=name,
        namespace=namespace,
        labels=meta_labels,
        owner=owner,
        groups=build_slo_rules(namespace=namespace, slo=slo, slo_name=slo_name),
    )


def _custom_rule(item: Mapping[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = (
        {"alert": item["alert"]} if item.get("alert") else {"record": item["record"]}
    )
    rule["expr"] = item["expr"]
    if item.get("alert"):
        if item.get("for"):
            rule["for"] = item["for"]
        if item.get("annotations"):
            rule["annotations"] = dict(item["annotations"])
    if item.get("labels"):
        rule["labels"] = dict(item["labels"])
    return rule


def build_custom_rules(
    *,
    service: str,
    namespace: str,
    alerts: Sequence[Mapping[str, Any]],
    config: Config,
    owner: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The PrometheusRule ``<service>-custom`` for ``spec.monitoring.alerts`` of a MirageService
    (items ``{alert|record, expr, for, labels, annotations}``), in one group, in order."""
    meta_labels = {
        **standard_labels(name=service, component="alerts"),
        **(labels or {}),
        **dict(config.monitoring_labels),
    }
    return _object(
        name=custom_rules_name(service),
        namespace=namespace,
        labels=meta_labels,
        owner=owner,
        groups=[{"name": f"mirage-{service}-custom", "rules": [_custom_rule(r) for r in alerts]}],
    )
