"""Typed model of a ServiceLevelObjective spec, the burn-rate scheme, and the rules the CRD
schema cannot express.

``ServiceLevelObjectiveSpec.from_spec`` expects a spec the CRD schema has validated; it applies
the CRD's defaults itself (:mod:`.defaults`), so that a spec read straight from a file
(``mirage render``) parses the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mirage_operator.api import alerttemplate, defaults, promql
from mirage_operator.errors import Problem

KIND = "ServiceLevelObjective"

# Preset metrics when unset: they depend on the preset's type, which a schema default cannot.
DEFAULT_COUNTER = "http_requests_total"
DEFAULT_HISTOGRAM = "http_request_duration_seconds"
PRESET_TYPES = ("http-availability", "http-latency")

# The compliance window must hold the longest alert window (3d); beyond a year the
# whole-window series would read too many samples per evaluation to be worth it.
MIN_WINDOW_DAYS = 3
MAX_WINDOW_DAYS = 365

RATIO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
"""Windows of the error-ratio recording rules, besides the whole compliance window."""

_RANGE_SECONDS = {"m": 60, "h": 3600, "d": 86400}

PLACEHOLDER = re.compile(r"\{\{\s*window\s*\}\}")
"""The ``{{window}}`` placeholder of SLI queries (inner spaces allowed)."""
_ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
RESERVED_LABEL_PREFIX = "mirage_"


def range_seconds(duration: str) -> int:
    """Seconds in a PromQL range such as ``5m``, ``6h`` or ``30d`` (one unit only)."""
    return int(duration[:-1]) * _RANGE_SECONDS[duration[-1]]


REFERENCE_WINDOW_DAYS = 30
"""The compliance window of the SRE workbook's table; budget fractions are fractions of a
budget of this many days (see :meth:`BurnRateAlert.factor`)."""

MIN_FACTOR = {"page": 2.0, "ticket": 1.0}
"""Lowest burn-rate factor per severity. Below 1 a service that meets its objective would
alert; a page below 2 would wake someone for a burn that leaves half the window's budget."""


@dataclass(frozen=True)
class BurnRateAlert:
    """One window pair of the SRE workbook's multi-window multi-burn-rate alerts.

    ``budget_fraction`` of a 30-day error budget spent within ``long`` is what the pair
    detects; the burn-rate factor follows from it and the compliance window (:meth:`factor`).
    """

    severity: str
    """``page`` or ``ticket``."""
    long: str
    short: str
    budget_fraction: float

    def factor(self, window_days: int) -> float:
        """Burn-rate factor (multiple of the error budget's ratio) for a compliance window of
        ``window_days`` days.

        ``budget_fraction * min(window, 30d) / long``, at least ``MIN_FACTOR[severity]``:
        the workbook's 14.4, 6, 3, 1 from 30 days up; shorter windows scale down with the
        window (the same fraction of a smaller budget) but never below 1 (ticket) or 2 (page),
        so that a steady error ratio within the budget fires nothing at any window. Longer
        windows keep the 30-day factors rather than scaling up, or a steady burn between 1 and
        3 times the budget would exhaust a 90-day budget without a ticket (ADR 0050).
        """
        days = min(window_days, REFERENCE_WINDOW_DAYS)
        scaled = self.budget_fraction * days * 86400 / range_seconds(self.long)
        return max(MIN_FACTOR[self.severity], scaled)


# 30d factors 14.4, 6, 3, 1 (SRE workbook, "Alerting on SLOs", table 5-8); 7d: 3.36, 2, 1, 1.
BURN_RATE_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("page", "1h", "5m", 0.02),
    BurnRateAlert("page", "6h", "30m", 0.05),
    BurnRateAlert("ticket", "1d", "2h", 0.10),
    BurnRateAlert("ticket", "3d", "6h", 0.10),
)
SEVERITIES = ("page", "ticket")


def _pairs(raw: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in (raw or {}).items())


@dataclass(frozen=True)
class EventsSLI:
    """Bad and total events per second, each a PromQL template over ``{{window}}``."""

    error_query: str
    total_query: str


@dataclass(frozen=True)
class RawSLI:
    """An error ratio (0..1) as one PromQL template over ``{{window}}``."""

    error_ratio_query: str


@dataclass(frozen=True)
class PresetSLI:
    """A conventional HTTP indicator on a counter or a histogram."""

    type: str
    metric: str
    selector: tuple[tuple[str, str], ...]
    status_label: str
    error_status_regex: str
    latency_threshold: str | None


SLI = EventsSLI | RawSLI | PresetSLI


@dataclass(frozen=True)
class AlertSettings:
    """Settings of the page or the ticket alert."""

    enabled: bool
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Alerting:
    """The burn-rate alerts; ``name`` is the base of the alert names when set."""

    name: str | None
    page: AlertSettings
    ticket: AlertSettings

    def settings(self, severity: str) -> AlertSettings:
        """The settings of ``page`` or ``ticket``."""
        return self.page if severity == "page" else self.ticket


def lowest_threshold(severity: str, *, objective: float, window_days: int) -> float:
    """The lowest error ratio at which the ``severity`` alert fires; 1 or more: never."""
    budget = 1 - objective / 100
    return min(a.factor(window_days) * budget for a in BURN_RATE_ALERTS if a.severity == severity)


def _alert_settings(raw: Mapping[str, Any] | None, *, can_fire: bool) -> AlertSettings:
    raw = raw or {}
    return AlertSettings(
        # Unset: on when it can fire, so that no default refuses a spec (ADR 0012).
        enabled=bool(raw.get("enabled", can_fire)),
        labels=_pairs(raw.get("labels")),
        annotations=_pairs(raw.get("annotations")),
    )


def _sli(raw: Mapping[str, Any], service: str) -> SLI:
    if "events" in raw:
        events = raw["events"]
        return EventsSLI(error_query=events["errorQuery"], total_query=events["totalQuery"])
    if "raw" in raw:
        return RawSLI(error_ratio_query=raw["raw"]["errorRatioQuery"])
    preset = raw["preset"]
    kind = preset["type"]
    default_metric = DEFAULT_COUNTER if kind == "http-availability" else DEFAULT_HISTOGRAM
    # An empty selector would match every service's series: fall back to the default.
    selector = _pairs(preset.get("selector")) or (("service", service),)
    return PresetSLI(
        type=kind,
        metric=preset.get("metric") or default_metric,
        selector=selector,
        status_label=preset["statusLabel"],
        error_status_regex=preset["errorStatusRegex"],
        latency_threshold=preset.get("latencyThreshold"),
    )


@dataclass(frozen=True)
class ServiceLevelObjectiveSpec:
    """The spec of a ServiceLevelObjective (or of one entry of a MirageService's
    ``spec.monitoring.slos``, with the service supplied by the caller)."""

    service: str
    objective: float
    """Target percentage, 0 < objective < 100."""
    window: str
    """Compliance window, ``<days>d``."""
    description: str
    sli: SLI
    alerting: Alerting
    labels: tuple[tuple[str, str], ...]

    @property
    def window_days(self) -> int:
        """The compliance window in days."""
        return int(self.window[:-1])

    @property
    def error_budget(self) -> float:
        """The allowed error ratio, ``1 - objective/100`` (rounded off float noise)."""
        return round(1 - self.objective / 100, 12)

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], *, service: str | None = None
    ) -> ServiceLevelObjectiveSpec:
        """Parse a schema-valid spec, defaulted here by the CRD schema; ``service`` supplies or
        overrides ``spec.service`` (a MirageService's embedded SLOs have none)."""
        spec = defaults.defaulted(KIND, spec)
        name = service if service is not None else str(spec["service"])
        alerting = spec["alerting"]
        window = str(spec["window"])

        def settings(severity: str) -> AlertSettings:
            lowest = lowest_threshold(
                severity, objective=float(spec["objective"]), window_days=int(window[:-1])
            )
            return _alert_settings(alerting.get(severity), can_fire=lowest < 1)

        return cls(
            service=name,
            objective=float(spec["objective"]),
            window=window,
            description=str(spec.get("description", "")),
            sli=_sli(spec["sli"], name),
            alerting=Alerting(
                name=alerting.get("name"),
                page=settings("page"),
                ticket=settings("ticket"),
            ),
            labels=_pairs(spec.get("labels")),
        )


# --- rules the schema cannot express ---------------------------------------------------------


def _query_problems(query: str, field: str, *, types: tuple[str, ...]) -> list[Problem]:
    problems: list[Problem] = []
    if not PLACEHOLDER.search(query):
        problems.append(Problem(field, "must contain the {{window}} placeholder as its range"))
    unknown = sorted(
        {m.group(0) for m in _ANY_PLACEHOLDER.finditer(query) if not PLACEHOLDER.fullmatch(m[0])}
    )
    if unknown:
        problems.append(Problem(field, f"unknown placeholder {', '.join(unknown)}"))
        return problems
    # Check the query as it will be written, with a real range in place of the placeholder
    # (every window Mirage substitutes is a one-unit duration, like 5m).
    reason = promql.typed_expression_problem(PLACEHOLDER.sub("5m", query), types=types)
    if reason:
        problems.append(Problem(field, f"not valid PromQL: {reason}"))
    return problems


def _label_problems(labels: Mapping[str, Any], field: str, *, reserved: bool) -> list[Problem]:
    problems = []
    for key in labels:
        reason = promql.label_name_problem(key)
        if reason:
            problems.append(Problem(f"{field}.{key}", reason))
        elif reserved and (key.startswith(RESERVED_LABEL_PREFIX) or key == "alertname"):
            problems.append(Problem(f"{field}.{key}", "label reserved for the operator"))
    return problems


def _template_problems(
    values: Mapping[str, Any], field: str, *, annotations: bool = False
) -> list[Problem]:
    """Alert label values and annotations are Go templates Prometheus must be able to parse;
    annotation names must be label names (rulefmt)."""
    problems = []
    for key, value in values.items():
        if annotations and (reason := promql.annotation_name_problem(key)):
            problems.append(Problem(f"{field}.{key}", reason))
        if isinstance(value, str) and (reason := alerttemplate.template_problem(value)):
            problems.append(Problem(f"{field}.{key}", f"not a valid alert template: {reason}"))
    return problems


def _preset_problems(preset: Mapping[str, Any], field: str) -> list[Problem]:
    """Each matcher of a preset must be one Prometheus parses: label names, regex (RE2)."""
    problems = []
    regex = preset.get("errorStatusRegex")
    if isinstance(regex, str) and (reason := promql.regex_problem(regex)):
        problems.append(
            Problem(
                f"{field}.errorStatusRegex",
                f"not a regular expression Prometheus accepts: {reason}",
            )
        )
    status = preset.get("statusLabel")
    if isinstance(status, str) and (reason := promql.label_name_problem(status)):
        problems.append(Problem(f"{field}.statusLabel", reason))
    problems += _label_problems(preset.get("selector") or {}, f"{field}.selector", reserved=False)
    return problems


def spec_problems(spec: Mapping[str, Any], *, field: str = "spec") -> list[Problem]:
    """Problems of an SLO spec (or an embedded one) that the schema cannot express; paths start
    with ``field`` (``spec.monitoring.slos[0]`` for a MirageService's)."""
    problems: list[Problem] = []
    spec = defaults.defaulted(KIND, spec)
    window = str(spec["window"])
    if re.fullmatch(r"[1-9][0-9]*d", window):
        days = int(window[:-1])
        if not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
            problems.append(
                Problem(
                    f"{field}.window",
                    f"must be between {MIN_WINDOW_DAYS}d (the longest alert window) and "
                    f"{MAX_WINDOW_DAYS}d",
                )
            )
    sli = spec.get("sli") or {}
    events = sli.get("events")
    if isinstance(events, Mapping):
        for key in ("errorQuery", "totalQuery"):
            if isinstance(events.get(key), str):
                path = f"{field}.sli.events.{key}"
                problems += _query_problems(events[key], path, types=("vector",))
    raw = sli.get("raw")
    if isinstance(raw, Mapping) and isinstance(raw.get("errorRatioQuery"), str):
        problems += _query_problems(
            raw["errorRatioQuery"], f"{field}.sli.raw.errorRatioQuery", types=("vector", "scalar")
        )
    preset = sli.get("preset")
    if isinstance(preset, Mapping):
        problems += _preset_problems(preset, f"{field}.sli.preset")
    problems += _label_problems(spec.get("labels") or {}, f"{field}.labels", reserved=True)
    alerting = spec.get("alerting") or {}
    for severity in SEVERITIES:
        settings = alerting.get(severity) or {}
        labels = settings.get("labels") or {}
        problems += _label_problems(labels, f"{field}.alerting.{severity}.labels", reserved=True)
        problems += _template_problems(labels, f"{field}.alerting.{severity}.labels")
        annotations = settings.get("annotations") or {}
        problems += _template_problems(
            annotations, f"{field}.alerting.{severity}.annotations", annotations=True
        )
    problems += _reachability_problems(spec, window, field)
    return problems


def _reachability_problems(spec: Mapping[str, Any], window: str, field: str) -> list[Problem]:
    """An alert asked for explicitly (``enabled: true``) whose every threshold is an error
    ratio of 1 or more can never fire. Left unset, such an alert is simply not generated."""
    objective = spec.get("objective")
    if not isinstance(objective, int | float) or not 0 < objective < 100:
        return []
    if not re.fullmatch(r"[1-9][0-9]*d", window):
        return []
    alerting = spec.get("alerting") or {}
    problems = []
    for severity in SEVERITIES:
        if (alerting.get(severity) or {}).get("enabled") is not True:
            continue
        lowest = lowest_threshold(severity, objective=objective, window_days=int(window[:-1]))
        if lowest >= 1:
            problems.append(
                Problem(
                    f"{field}.objective",
                    f"the {severity} alert needs an error ratio above {lowest:.3g} and can never "
                    f"fire; raise the objective or leave alerting.{severity}.enabled unset",
                )
            )
    return problems


def rules(body: Mapping[str, Any]) -> list[Problem]:
    """Problems of a ServiceLevelObjective that its CRD schema cannot express."""
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        return []
    return spec_problems(spec)


def custom_rule_problems(items: Sequence[Mapping[str, Any]], *, field: str) -> list[Problem]:
    """Problems of custom alerting/recording rules (a MirageService's ``spec.monitoring.alerts``)
    that the schema cannot express; ``field`` is the list's path. Every rule this accepts
    passes ``promtool check rules`` (tests/rules/test_rule_corpus.py)."""
    problems: list[Problem] = []
    for index, item in enumerate(items):
        path = f"{field}[{index}]"
        problems += _rule_name_problems(item, path)
        expr = item.get("expr")
        if isinstance(expr, str) and (reason := promql.expression_problem(expr)):
            problems.append(Problem(f"{path}.expr", f"not valid PromQL: {reason}"))
        duration = item.get("for")
        if isinstance(duration, str) and (reason := promql.duration_problem(duration)):
            problems.append(Problem(f"{path}.for", reason))
        if item.get("record") and (item.get("for") or item.get("annotations")):
            problems.append(Problem(path, "a recording rule takes neither for nor annotations"))
        labels = item.get("labels") or {}
        problems += _label_problems(labels, f"{path}.labels", reserved=False)
        if item.get("alert"):
            problems += _template_problems(labels, f"{path}.labels")
            annotations = item.get("annotations") or {}
            problems += _template_problems(annotations, f"{path}.annotations", annotations=True)
    return problems


def _rule_name_problems(item: Mapping[str, Any], path: str) -> list[Problem]:
    # The schema's patterns say the same; checked here too so that no path to a rule file
    # (a schema engine whose "$" matches before a final newline) lets a bad name through.
    record, alert = item.get("record"), item.get("alert")
    if isinstance(record, str) and (reason := promql.metric_name_problem(record)):
        return [Problem(f"{path}.record", reason)]
    if isinstance(alert, str) and (reason := promql.alert_name_problem(alert)):
        return [Problem(f"{path}.alert", reason)]
    return []
