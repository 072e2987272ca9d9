"""Grafana dashboards as ConfigMaps for the Grafana sidecar: one for the operator, one per SLO.

Dashboards are built in code (not kept as JSON templates) so that every query names a series
from ``metrics`` or from the SLO rules of ``render.prometheusrule``, which the tests check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mirage_operator.api.k8svalidation import CONFIG_MAP_KEY_MAX_LENGTH, label_value, shorten
from mirage_operator.api.slo import BURN_RATE_ALERTS, ServiceLevelObjectiveSpec
from mirage_operator.config import Config
from mirage_operator.render import prometheusrule as rules
from mirage_operator.render.meta import object_meta, standard_labels

SCHEMA_VERSION = 39
"""Grafana dashboard JSON schema version written (Grafana 10.4 and later read it as is)."""
FOLDER_ANNOTATION = "grafana_folder"
"""Annotation naming the Grafana folder (honoured when the sidecar's folderAnnotation is set)."""
OPERATOR_DASHBOARD_UID = "mirage-operator"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_WIDTH = 24  # Grafana's grid is 24 columns wide.


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
    }


def _target(expr: str, legend: str, ref: int) -> dict[str, Any]:
    return {
        "datasource": _DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": chr(ord("A") + ref),
    }


def _panel(
    kind: str,
    title: str,
    queries: Sequence[tuple[str, str]],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    description: str = "",
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
    threshold_lines: bool = False,
) -> dict[str, Any]:
    """A panel without id and position (``_layout`` assigns them)."""
    custom: dict[str, Any] = {}
    if kind == "timeseries":
        custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
        if threshold_lines:
            custom["thresholdsStyle"] = {"mode": "line"}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DATASOURCE,
        "gridPos": {"w": width, "h": height},
        "targets": [_target(expr, legend, i) for i, (expr, legend) in enumerate(queries)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": custom,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"value": v, "color": c} for v, c in thresholds],
                },
            },
            "overrides": [],
        },
        "options": (
            {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
            if kind == "timeseries"
            else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        ),
    }


def _stat(title: str, expr: str, legend: str, **options: Any) -> dict[str, Any]:
    """A stat panel of one query, a quarter of the grid wide."""
    return _panel("stat", title, [(expr, legend)], **{"width": 6, "height": 4, **options})


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number the panels and place them left to right, top to bottom, on the 24-column grid."""
    x = y = row_height = 0
    for index, panel in enumerate(panels, start=1):
        pos = panel["gridPos"]
        if x + pos["w"] > _WIDTH:
            x, y, row_height = 0, y + row_height, 0
        pos.update({"x": x, "y": y})
        x += pos["w"]
        row_height = max(row_height, pos["h"])
        panel["id"] = index
    return panels


def _dashboard(
    *,
    uid: str,
    title: str,
    tags: Sequence[str],
    panels: list[dict[str, Any]],
    variables: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": list(tags),
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "templating": {"list": [_datasource_variable(), *variables]},
        "panels": _layout(panels),
    }


def _config_map(
    *,
    name: str,
    namespace: str,
    file_name: str,
    dashboard: Mapping[str, Any],
    labels: Mapping[str, str],
    folder: str,
    config: Config,
    owner: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(
            name=name,
            namespace=namespace,
            # The sidecar selects by these, so they win over any other label.
            labels={**labels, **dict(config.dashboard_labels)},
            owner=owner,
            annotations={FOLDER_ANNOTATION: folder},
        ),
        "data": {file_name: json.dumps(dashboard, indent=2, sort_keys=True)},
    }


# --- the operator's dashboard ----------------------------------------------------------------

_JOB = '{job=~"$job"}'


def _rate(metric: str, by: str, matchers: str = "") -> str:
    inner = _JOB if not matchers else '{job=~"$job",' + matchers + "}"
    return f"sum by ({by}) (rate({metric}{inner}[$__rate_interval]))"


def _rates(title: str, by: str, *series: tuple[str, str], **options: Any) -> dict[str, Any]:
    """A time series of the per-second rates of counters (``series``: metric and legend),
    summed by ``by``."""
    matchers = options.pop("matchers", "")
    queries = [(_rate(metric, by, matchers), legend) for metric, legend in series]
    return _panel("timeseries", title, queries, unit="ops", **options)


def _latencies(title: str, histogram: str, by: str) -> dict[str, Any]:
    """A time series of the median, 95th and 99th percentile of ``histogram`` by ``by``."""
    return _panel("timeseries", title, _quantiles(histogram, by), unit="s")


def _quantiles(metric: str, by: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({metric}_bucket{_JOB}[$__rate_interval])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def operator_dashboard() -> dict[str, Any]:
    """The Grafana dashboard of the operator's own metrics (``mirage_operator.metrics``)."""
    panels = [
        _stat("Version", f"max by (version) (mirage_build_info{_JOB})", "{{version}}"),
        _stat("Managed objects", f"sum by (kind) (mirage_managed_objects{_JOB})", "{{kind}}"),
        _panel(
            "stat",
            "Reconcile errors (5m)",
            [
                (
                    f'sum(rate(mirage_reconciles_total{{job=~"$job",result!="success"}}[5m]))'
                    f" / sum(rate(mirage_reconciles_total{_JOB}[5m]))",
                    "errors",
                )
            ],
            unit="percentunit",
            width=6,
            height=4,
            thresholds=((None, "green"), (0.01, "orange"), (0.1, "red")),
        ),
        _stat("Vault tokens cached", f"sum(mirage_vault_tokens_cached{_JOB})", "tokens"),
        _stat(
            "Leaders (one per shard)",
            f"sum(mirage_leader{_JOB})",
            "leaders",
            thresholds=((None, "red"), (1, "green")),
        ),
        _stat(
            "Namespaces no shard owns",
            f"count(mirage_unowned_namespace{_JOB} == 1) or vector(0)",
            "namespaces",
            thresholds=((None, "green"), (1, "red")),
        ),
        _rates(
            "Lease errors by status", "code", ("mirage_leader_election_errors_total", "{{code}}")
        ),
        _rates(
            "Reconciles by kind and result",
            "kind, result",
            ("mirage_reconciles_total", "{{kind}} {{result}}"),
        ),
        _rates(
            "Failed reconciles",
            "kind, result",
            ("mirage_reconciles_total", "{{kind}} {{result}}"),
            matchers='result!="success"',
            description="Reconciliations that ended invalid, retried or in error.",
        ),
        _rates(
            "Resyncs",
            "kind, result",
            ("mirage_resyncs_total", "{{kind}} {{result}}"),
            description="Periodic resyncs: unchanged ones cost a dictionary lookup, no API call.",
        ),
        _latencies("Reconcile duration", "mirage_reconcile_duration_seconds", "kind"),
        _rates(
            "Children applied and deleted",
            "kind",
            ("mirage_children_applied_total", "applied {{kind}}"),
            ("mirage_children_deleted_total", "deleted {{kind}}"),
        ),
        _rates(
            "Drift corrections",
            "kind",
            ("mirage_drift_corrections_total", "{{kind}}"),
            description="Children restored after someone else changed or deleted them.",
        ),
        _rates(
            "Rollout restarts",
            "kind",
            ("mirage_rollout_restarts_total", "{{kind}}"),
            description="Workloads restarted because the data of a synced Secret changed.",
        ),
        _rates("Kubernetes API errors", "code", ("mirage_kubernetes_api_errors_total", "{{code}}")),
        _rates(
            "Vault logins",
            "namespace, result",
            ("mirage_vault_logins_total", "{{namespace}} {{result}}"),
        ),
        _rates(
            "Vault reads", "engine, outcome", ("mirage_vault_reads_total", "{{engine}} {{outcome}}")
        ),
        _latencies("Vault request duration", "mirage_vault_request_duration_seconds", "operation"),
        _rates(
            "Vault token and lease renewals",
            "result",
            ("mirage_vault_token_renewals_total", "token {{result}}"),
            ("mirage_vault_lease_renewals_total", "lease {{result}}"),
        ),
    ]
    job = {
        "name": "job",
        "label": "Job",
        "type": "query",
        "datasource": _DATASOURCE,
        "query": {"query": "label_values(mirage_build_info, job)", "refId": "job"},
        "definition": "label_values(mirage_build_info, job)",
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {},
        "refresh": 2,
        "hide": 0,
    }
    return _dashboard(
        uid=OPERATOR_DASHBOARD_UID,
        title="Mirage operator",
        tags=["mirage", "operator"],
        panels=panels,
        variables=[job],
    )


def build_operator_dashboard(
    *,
    namespace: str,
    config: Config,
    name: str = "mirage-operator-dashboard",
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConfigMap carrying :func:`operator_dashboard`, labelled for the Grafana sidecar."""
    return _config_map(
        name=name,
        namespace=namespace,
        file_name="mirage-operator.json",
        dashboard=operator_dashboard(),
        labels=standard_labels(name="mirage-operator", component="dashboard"),
        folder="Mirage",
        config=config,
        owner=owner,
    )


# --- one dashboard per SLO -------------------------------------------------------------------


def slo_dashboard_uid(*, namespace: str, slo_name: str, window: str) -> str:
    """A stable dashboard uid (Grafana allows 40 characters) unique per SLO and window."""
    digest = hashlib.sha256(f"{namespace}/{slo_name}/{window}".encode()).hexdigest()
    return f"mirage-slo-{digest[:20]}"


def slo_dashboard(
    *, namespace: str, slo: ServiceLevelObjectiveSpec, slo_name: str
) -> dict[str, Any]:
    """The Grafana dashboard of one SLO: budget remaining, burn rates and the SLI."""
    identity = rules.identity_labels(namespace=namespace, slo=slo, slo_name=slo_name)
    sel = rules.series_selector(identity)
    budget = slo.error_budget
    days = slo.window_days
    # Burn-rate thresholds as lines: where the page and the ticket alerts start to fire.
    page = min(a.factor(days) for a in BURN_RATE_ALERTS if a.severity == "page")
    ticket = min(a.factor(days) for a in BURN_RATE_ALERTS if a.severity == "ticket")
    alert_names = "|".join(
        rules.alert_name(slo, slo_name=slo_name, severity=s) for s in ("page", "ticket")
    )
    period = f"{slo.window} rolling"
    objective = f"{rules.promql_number(slo.objective)}%"
    panels = [
        _stat(
            "Objective", f"{rules.SERIES_OBJECTIVE}{sel}", "objective", unit="percentunit", height=5
        ),
        _stat(
            f"SLI ({period})",
            f"1 - {rules.SERIES_RATIO_PERIOD}{sel}",
            "SLI",
            unit="percentunit",
            height=5,
            thresholds=((None, "red"), (1 - budget, "green")),
        ),
        _stat(
            f"Error budget remaining ({period})",
            f"{rules.SERIES_BUDGET_REMAINING}{sel}",
            "remaining",
            unit="percentunit",
            height=5,
            thresholds=((None, "red"), (0, "orange"), (0.25, "green")),
        ),
        _stat(
            "Current burn rate (5m)",
            f"{rules.SERIES_CURRENT_BURN_RATE}{sel}",
            "burn rate",
            height=5,
            thresholds=((None, "green"), (ticket, "orange"), (page, "red")),
        ),
        _panel(
            "timeseries",
            "Error budget remaining",
            [(f"{rules.SERIES_BUDGET_REMAINING}{sel}", "remaining")],
            unit="percentunit",
            width=24,
            description=f"1 = untouched, 0 = spent, below 0 = overspent, over {period}.",
        ),
        _panel(
            "timeseries",
            "Burn rate by window",
            [
                (f"{rules.ratio_record(w)}{sel} / {rules.promql_number(budget)}", w)
                for w in ("5m", "1h", "6h", "1d", "3d")
            ]
            + [(f"{rules.SERIES_PERIOD_BURN_RATE}{sel}", slo.window)],
            description=(
                "Error ratio divided by the error budget; 1 spends the budget exactly over the "
                "window. Lines: the lowest ticket and page thresholds."
            ),
            thresholds=((None, "green"), (ticket, "orange"), (page, "red")),
            threshold_lines=True,
        ),
        _panel(
            "timeseries",
            "SLI",
            [(f"1 - {rules.ratio_record(w)}{sel}", w) for w in ("5m", "1h", "1d")]
            + [(f"1 - {rules.SERIES_RATIO_PERIOD}{sel}", slo.window)],
            unit="percentunit",
            thresholds=((None, "red"), (1 - budget, "green")),
            threshold_lines=True,
        ),
        _panel(
            "timeseries",
            "Burn-rate alerts firing",
            [
                (
                    f'sum by (alertname, mirage_severity) (ALERTS{{alertname=~"{alert_names}",'
                    f'alertstate="firing",mirage_slo="{slo_name}",'
                    f'mirage_namespace="{namespace}"}})',
                    "{{mirage_severity}}",
                )
            ],
            width=24,
            height=6,
        ),
    ]
    return _dashboard(
        uid=slo_dashboard_uid(namespace=namespace, slo_name=slo_name, window=slo.window),
        title=f"SLO {slo.service} / {slo_name} ({objective} over {slo.window})",
        tags=["mirage", "slo", slo.service],
        panels=panels,
    )


def build_slo_dashboard(
    *,
    name: str,
    namespace: str,
    slo: ServiceLevelObjectiveSpec,
    slo_name: str,
    config: Config,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ConfigMap ``name`` carrying the dashboard of the SLO ``slo_name``, labelled with
    ``config.dashboard_labels`` for the Grafana sidecar."""
    return _config_map(
        name=name,
        namespace=namespace,
        file_name=shorten(
            f"mirage-slo-{namespace}-{slo_name}-{slo.window}", limit=CONFIG_MAP_KEY_MAX_LENGTH - 5
        )
        + ".json",
        dashboard=slo_dashboard(namespace=namespace, slo=slo, slo_name=slo_name),
        labels={
            **standard_labels(name=slo.service, component="slo-dashboard"),
            "mirage.dev/slo": label_value(slo_name),
        },
        folder="Mirage SLOs",
        config=config,
        owner=owner,
    )
