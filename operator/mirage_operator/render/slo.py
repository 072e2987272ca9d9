"""What one ServiceLevelObjective becomes (its PrometheusRule and its dashboard ConfigMap),
and its status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator.api.names import rule_name, slo_dashboard_name
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.config import Config
from mirage_operator.render.dashboards import build_slo_dashboard
from mirage_operator.render.prometheusrule import build_prometheus_rule, rule_count
from mirage_operator.render.status import condition, merge_conditions

CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("v1", "ConfigMap"),
)
"""(apiVersion, kind) of every child a ServiceLevelObjective can have."""


def build_slo_children(
    *,
    name: str,
    namespace: str,
    slo: ServiceLevelObjectiveSpec,
    config: Config,
    owner: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The PrometheusRule and the Grafana dashboard ConfigMap of the SLO ``namespace/name``."""
    return [
        build_prometheus_rule(
            name=rule_name(name),
            namespace=namespace,
            slo=slo,
            slo_name=name,
            config=config,
            owner=owner,
        ),
        build_slo_dashboard(
            name=slo_dashboard_name(name),
            namespace=namespace,
            slo=slo,
            slo_name=name,
            config=config,
            owner=owner,
        ),
    ]


def build_slo_status(
    *,
    generation: int,
    old_status: Mapping[str, Any] | None,
    rule: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """Status of an SLO whose PrometheusRule ``rule`` is applied: Ready, the rule's name and
    how many rules it holds."""
    count = rule_count(rule)
    name = rule["metadata"]["name"]
    message = f"PrometheusRule {name} holds {count} rules"
    conditions = [
        condition("Ready", True, "RulesApplied", message, generation=generation),
        condition("Progressing", False, "RulesApplied", message, generation=generation),
        condition("Degraded", False, "RulesApplied", message, generation=generation),
    ]
    return {
        "observedGeneration": generation,
        "ruleName": name,
        "ruleCount": count,
        "conditions": merge_conditions((old_status or {}).get("conditions"), conditions, now=now),
    }


def rules_unavailable_status(
    *, generation: int, old_status: Mapping[str, Any] | None, message: str, now: str
) -> dict[str, Any]:
    """Status of an SLO whose rules cannot be written because the cluster does not serve
    PrometheusRules (prometheus-operator is not installed)."""
    reason = "PrometheusRuleUnavailable"
    conditions = [
        condition("Ready", False, reason, message, generation=generation),
        condition("Progressing", True, reason, "retrying", generation=generation),
        condition("Degraded", True, reason, message, generation=generation),
    ]
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions((old_status or {}).get("conditions"), conditions, now=now),
    }
