"""Synthetic traffic for promtool rule tests, and an independent model of what the rules should
conclude from it.

A :class:`Traffic` is a list of phases (minutes, requests per second, error ratio) starting at
t=0. From it this module writes promtool ``input_series`` for each kind of SLI, and computes
error ratios by counting events in each window (no PromQL, no rule code), from which the
expected firing times of the SRE workbook alerts and the remaining budget follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

SERVICE = "checkout"
NAMESPACE = "shop"

# The SRE workbook's table for a 30-day window: (long window, short window, burn-rate factor).
WORKBOOK_30D = {
    "page": (("1h", "5m", 14.4), ("6h", "30m", 6.0)),
    "ticket": (("1d", "2h", 3.0), ("3d", "6h", 1.0)),
}
_MINUTES = {"m": 1, "h": 60, "d": 1440}


def minutes(duration: str) -> int:
    """Minutes in ``5m``, ``6h``, ``3d``."""
    return int(duration[:-1]) * _MINUTES[duration[-1]]


# Lowest factor per severity (ADR 0050): below 1 a service within its budget would alert.
FLOOR = {"page": 2.0, "ticket": 1.0}


def thresholds(severity: str, window_days: int, budget: float) -> list[tuple[int, int, float]]:
    """(long minutes, short minutes, error-ratio threshold) of each pair of an alert: the
    workbook's 30d factors, scaled by ``window_days / 30`` below 30 days (never above), and
    never below the severity's floor."""
    scale = min(window_days, 30) / 30
    return [
        (minutes(long), minutes(short), max(FLOOR[severity], factor * scale) * budget)
        for long, short, factor in WORKBOOK_30D[severity]
    ]


@dataclass(frozen=True)
class Phase:
    """``minutes`` of steady traffic at ``rps`` requests/s, ``error_ratio`` of them bad."""

    minutes: int
    rps: float
    error_ratio: float


@dataclass(frozen=True)
class Traffic:
    """Counter values sampled once a minute, from phases laid end to end."""

    phases: tuple[Phase, ...]

    @property
    def duration(self) -> int:
        """Minutes covered."""
        return sum(p.minutes for p in self.phases)

    @cached_property
    def counters(self) -> tuple[list[float], list[float]]:
        """(all events, bad events) cumulative counters at minutes 0..duration."""
        total, errors = [0.0], [0.0]
        for phase in self.phases:
            for _ in range(phase.minutes):
                per_minute = phase.rps * 60
                total.append(total[-1] + per_minute)
                errors.append(errors[-1] + per_minute * phase.error_ratio)
        return total, errors

    def ratio(self, at: int, window: int) -> float:
        """Bad / all events in the window of ``window`` minutes ending at minute ``at``, counting
        only what exists (history starts at 0, as it does for the recorded series)."""
        total, errors = self.counters
        start = max(0, at - window)
        events = total[at] - total[start]
        return 0.0 if events == 0 else (errors[at] - errors[start]) / events

    def fires(self, severity: str, at: int, *, window_days: int, budget: float) -> bool:
        """Whether the workbook's multi-window condition of ``severity`` holds at ``at``."""
        return any(
            self.ratio(at, long) > limit and self.ratio(at, short) > limit
            for long, short, limit in thresholds(severity, window_days, budget)
        )

    def first_firing(self, severity: str, *, window_days: int, budget: float) -> int | None:
        """First minute at which the alert condition holds, or ``None``."""
        for at in range(1, self.duration + 1):
            if self.fires(severity, at, window_days=window_days, budget=budget):
                return at
        return None

    def budget_remaining(self, at: int, *, budget: float) -> float:
        """1 - (bad / all events since the start) / budget (history shorter than the window)."""
        return 1 - self.ratio(at, at) / budget


def _notation(values: Sequence[float]) -> str:
    """promtool's expanding notation: runs of equal steps as ``start+stepxN``."""
    segments = []
    i = 0
    while i < len(values):
        j = i
        step = values[i + 1] - values[i] if i + 1 < len(values) else 0.0
        while j + 1 < len(values) and abs((values[j + 1] - values[j]) - step) < 1e-9:
            j += 1
        segments.append(f"{values[i]:.10g}+{step:.10g}x{j - i}")
        i = j + 1
    return " ".join(segments)


def _labels(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def input_series(kind: str, traffic: Traffic, *, with_errors: bool = True) -> list[dict[str, str]]:
    """promtool ``input_series`` carrying ``traffic`` in the metrics an SLI of ``kind`` reads:
    ``availability``/``latency`` (the presets' default metrics, labelled service=checkout),
    ``events``/``raw`` (jobs_total and jobs_failed_total, labelled queue=checkout)."""
    total, errors = traffic.counters
    good = [t - e for t, e in zip(total, errors, strict=True)]
    series: list[tuple[str, list[float]]] = []
    if kind == "availability":
        base = {"service": SERVICE}
        series.append((_labels("http_requests_total", {**base, "code": "200"}), good))
        if with_errors:
            series.append((_labels("http_requests_total", {**base, "code": "503"}), errors))
    elif kind == "latency":
        base = {"service": SERVICE}
        name = "http_request_duration_seconds"
        series += [
            (_labels(f"{name}_bucket", {**base, "le": "0.1"}), [g / 2 for g in good]),
            (_labels(f"{name}_bucket", {**base, "le": "0.3"}), good),
            (_labels(f"{name}_bucket", {**base, "le": "+Inf"}), total),
            (_labels(f"{name}_count", base), total),
        ]
    elif kind in ("events", "raw"):
        base = {"queue": SERVICE}
        series.append((_labels("jobs_total", base), total))
        if with_errors:
            series.append((_labels("jobs_failed_total", base), errors))
    else:
        raise ValueError(kind)
    return [{"series": name, "values": _notation(values)} for name, values in series]


def sli(kind: str) -> dict[str, Any]:
    """The ``spec.sli`` of an SLO of ``kind`` over the metrics of :func:`input_series`."""
    if kind == "availability":
        return {"preset": {"type": "http-availability"}}
    if kind == "latency":
        return {"preset": {"type": "http-latency", "latencyThreshold": "0.3"}}
    errors = f'sum(rate(jobs_failed_total{{queue="{SERVICE}"}}[{{{{window}}}}]))'
    total = f'sum(rate(jobs_total{{queue="{SERVICE}"}}[{{{{window}}}}]))'
    if kind == "events":
        return {"events": {"errorQuery": errors, "totalQuery": total}}
    if kind == "raw":
        return {"raw": {"errorRatioQuery": f"{errors} / {total}"}}
    raise ValueError(kind)


SLI_KINDS = ("availability", "latency", "events", "raw")


def promql_labels(labels: dict[str, str]) -> str:
    """A label set as promtool's ``exp_samples`` writes it."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def duration(minutes_: int) -> str:
    """A promtool duration for a number of minutes."""
    return f"{minutes_}m"
