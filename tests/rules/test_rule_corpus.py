"""Rule inputs checked both ways: ``mirage validate`` (``problems_of``) and the real
``promtool check rules`` on the PrometheusRule groups Mirage renders from the same document.

One corpus per kind of PromQL- or template-bearing field: custom rule expressions, SLI queries,
preset matchers, alert label and annotation templates (custom rules and SLO alerts), rule,
label and annotation names, ``for`` durations, and literal text Mirage writes into alerts. For
every case the two verdicts must agree; the few cases where Mirage is stricter on purpose say
why (``stricter``), and there Mirage must refuse and promtool accept. Never the other way: a
rule set Mirage accepts always loads in Prometheus.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from mirage_operator.api import alerttemplate, promql
from mirage_operator.api.alerttemplate import literal
from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.api.validation import problems_of
from mirage_operator.cli import main
from mirage_operator.config import Config
from mirage_operator.render.prometheusrule import build_custom_rules, build_prometheus_rule
from tests.rules import generated

NAMESPACE = "shop"
GOOD_EVENTS = "sum(rate(http_requests_total{code=~'5..'}[{{window}}]))"
GOOD_TOTAL = "sum(rate(http_requests_total[{{window}}]))"


@dataclass(frozen=True)
class Case:
    """One document; ``field`` is where Mirage must report the problem when it refuses."""

    id: str
    document: dict[str, Any]
    field: str | None = None
    stricter: str | None = None
    """Why Mirage refuses an input promtool accepts, when it does on purpose."""


def _custom(index: int, rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": f"c{index}", "namespace": NAMESPACE},
        "spec": {"image": "registry.example/api:1.2.3", "monitoring": {"alerts": [rule]}},
    }


def _slo(index: int, **spec: Any) -> dict[str, Any]:
    body = {
        "service": "checkout",
        "objective": 99.9,
        "sli": {"preset": {"type": "http-availability"}},
    }
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {"name": f"s{index}", "namespace": NAMESPACE},
        "spec": {**body, **spec},
    }


# --- the corpora -----------------------------------------------------------------------------

EXPRESSIONS_OK = [
    "up",
    "up == 0",
    "sum by (job) (rate(http_requests_total{code=~'5..'}[5m])) > 0.1",
    "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
    "x{a='\\''} or on() vector(0)",
    'label_replace(x, "a", "$1", "b", "(.*)")',
    "holt_winters(x[1h], 0.5, 0.5)",
    "present_over_time(x[5m]) unless absent(y)",
    "x offset -5m @ start()",
    "rate(x[5m])[1h:1m]",
    "x # a comment",
    "sum without () (x)",
    "x * on(a) group_left(b) y",
    "x{a=~'\\\\d+|(?i)x', b!~'[[:alpha:]]'}",
    "x[1h30m]",
    "1 > bool 0",
    "topk(3, x) and bottomk(3, x)",
    'x{a="\\u00e9\\x41\\101"}',
    "{__name__=~'job:.*'}",
]
EXPRESSIONS_BAD = [
    "up ==",
    "sum(rate(x[5m])) +",
    "nosuchfunc(x)",
    "rate(x)",
    "rate(x[5m]",
    "x)",
    "1 == 2",
    "x and on(a) group_left y",
    "limitk(3, x)",
    "double_exponential_smoothing(x[1h], 0.5, 0.5)",
    'sort_by_label(x, "a")',
    "mad_over_time(x[5m])",
    "histogram_avg(x)",
    'x{a="b" or c="d"}',
    '{"my.metric"}',
    'x{"a.b"="c"}',
    'sum by ("a") (x)',
    "x[300]",
    "x offset 300",
    "5m",
    "x[5m1h]",
    "x[0s]",
    "1_000",
    '{a=""}',
    'x{__name__="y"}',
    'x{a="\\q"}',
    'x{a="\\400"}',
    "x{a=~'a{1001}'}",
    "x{a=~'a**'}",
    "x{a=~'a*??'}",
    "x{a=~'(?<n>a)'}",
    "x{a=~'a)|(b'}",
    "x{a=~'(a'}",
    "x{a=~'\\\\Z'}",
    "x{a=~'(?=a)'}",
    "count_values(1, x)",
    "sum(x) by (a) without (b)",
    "   ",
]
EXPRESSIONS_STRICTER = {
    "x{a=`\\q`}": "promql-parser refuses an unknown escape in a raw string, Go reads it as text",
    "x{a=~'\\\\Q)\\\\E'}": "Rust's regex has no \\Q...\\E quoting, Go's RE2 has",
}

TEMPLATES_OK = [
    "{{ $value }}",
    "{{ $value | humanizePercentage }} errors on {{ $labels.instance }}",
    "{{ humanize $value }} {{ humanize1024 1024.0 }} {{ humanizeDuration 3.5 }}",
    '{{ with query "up" }}{{ . | first | value | humanize }}{{ end }}',
    '{{ range $i, $s := query "up" }}{{ $i }}={{ $s.Labels.job }}{{ end }}',
    "{{ if gt $value 1.0 }}high{{ else if lt $value 0.5 }}low{{ else }}ok{{ end }}",
    "{{- /* comment */ -}} trimmed {{- $value -}}",
    '{{ $x := "a" }}{{ $x = "b" }}{{ $x }}',
    "{{ $externalURL }}/graph {{ $externalLabels.cluster }}",
    '{{ printf "%.2f" $value }} {{ toUpper "a" }} {{ reReplaceAll "a" "b" "c" }}',
    '{{ define "x" }}in{{ end }}{{ template "x" }}',
    "{{ range $labels }}{{ break }}{{ end }}",
    "{{ `raw {{ string` }}",
    "{{ 0x1F }} {{ 1e3 }} {{ 'a' }} {{ -1.5 }} {{ 1_000 }}",
    "}} alone {",
    "{{ print 1 | printf }}",
    '{{ "{{" }} literal',
    "{{ .Labels.job }} {{ .Value }}",
    '{{ (query "up") }} {{ len $labels }}',
    "no template at all",
]
TEMPLATES_BAD = [
    "{{ $value ",
    "{{ $value }",
    "{{ nosuch $value }}",
    "{{ $undefined }}",
    "{{ if $value }}no end",
    "{{ end }}",
    "{{ else }}",
    "{{ }}",
    "{{ print 1 | 2 }}",
    "{{ range $i, $v, $w := $labels }}{{ end }}",
    "{{ break }}",
    '{{ "unterminated }}',
    "{{ 'ab' }}",
    "{{ 08 }}",
    "{{ 1e400 }}",
    '{{ "\\q" }}',
    "{{ /* not a comment */ }}",
    "{{/* unclosed",
    "{{ (print 1 }}",
    "{{ print 1) }}",
    "{{ 1.X }}",
    "{{ with 1 }}{{ else with 2 }}{{ end }}",
    '{{ define "x" }}{{ $labels }}{{ end }}',
    "{{ $labels.a-b }}",
    "{{ print \x01 }}",
]

DROPPED = "a recording rule has no for or annotations: Mirage refuses what it would drop"
DURATIONS_OK = ["5m", "1h30m", "90s", "2w", "1y", "0", "500ms", "292y"]
DURATIONS_BAD = ["5", "-5m", "5 m", "1.5h", "30m1h", "5M", "", "293y", "5m\n"]


def _cases() -> list[Case]:
    cases: list[Case] = []
    index = iter(range(10_000))

    def add(
        case_id: str, document: dict[str, Any], field: str | None, stricter: str | None = None
    ) -> None:
        cases.append(Case(case_id, document, field, stricter))

    alerts = "spec.monitoring.alerts[0]"
    for expr in EXPRESSIONS_OK:
        add(f"expr-ok:{expr}", _custom(next(index), {"alert": "A", "expr": expr}), None)
    for expr in EXPRESSIONS_BAD:
        add(
            f"expr-bad:{expr}", _custom(next(index), {"alert": "A", "expr": expr}), f"{alerts}.expr"
        )
    for expr, why in EXPRESSIONS_STRICTER.items():
        add(
            f"expr-strict:{expr}",
            _custom(next(index), {"record": "r", "expr": expr}),
            f"{alerts}.expr",
            why,
        )
    for expr in ("sum(rate(x[5m]))", "up =="):
        document = _custom(next(index), {"record": "job:x:rate5m", "expr": expr})
        add(f"record-expr:{expr}", document, None if expr != "up ==" else f"{alerts}.expr")

    for text in TEMPLATES_OK:
        rule = {"alert": "A", "expr": "up", "labels": {"l": text}, "annotations": {"a": text}}
        add(f"template-ok:{text}", _custom(next(index), rule), None)
        add(
            f"slo-template-ok:{text}",
            _slo(
                next(index), alerting={"page": {"annotations": {"a": text}, "labels": {"l": text}}}
            ),
            None,
        )
    for text in TEMPLATES_BAD:
        add(
            f"template-bad:{text}",
            _custom(next(index), {"alert": "A", "expr": "up", "annotations": {"a": text}}),
            f"{alerts}.annotations.a",
        )
        add(
            f"label-template-bad:{text}",
            _custom(next(index), {"alert": "A", "expr": "up", "labels": {"l": text}}),
            f"{alerts}.labels.l",
        )
        add(
            f"slo-template-bad:{text}",
            _slo(next(index), alerting={"ticket": {"annotations": {"a": text}}}),
            "spec.alerting.ticket.annotations.a",
        )
        # On a recording rule, a label value is not a template: any text is fine.
        add(
            f"record-label:{text}",
            _custom(next(index), {"record": "r", "expr": "up", "labels": {"l": text}}),
            None,
        )

    for duration in DURATIONS_OK:
        add(
            f"for-ok:{duration}",
            _custom(next(index), {"alert": "A", "expr": "up", "for": duration}),
            None,
        )
    for duration in DURATIONS_BAD:
        rule = {"alert": "A", "expr": "up", "for": duration}
        add(
            f"for-bad:{duration!r}",
            _custom(next(index), rule),
            f"{alerts}.for",
            "an empty for is no for" if duration == "" else None,
        )

    names: list[tuple[str, dict[str, Any], str | None, str | None]] = [
        ("record job:up:sum", {"record": "job:up:sum", "expr": "up"}, None, None),
        ("record 1a", {"record": "1a", "expr": "up"}, f"{alerts}.record", None),
        ("record a-b", {"record": "a-b", "expr": "up"}, f"{alerts}.record", None),
        ("record newline", {"record": "ab\n", "expr": "up"}, f"{alerts}.record", None),
        (
            "alert a-b",
            {"alert": "a-b", "expr": "up"},
            f"{alerts}.alert",
            "alert names are label values Alertmanager routes on; Mirage keeps them identifiers",
        ),
        ("alert newline", {"alert": "A\n", "expr": "up"}, f"{alerts}.alert", "as above"),
        (
            "label __x",
            {"alert": "A", "expr": "up", "labels": {"__x": "v"}},
            f"{alerts}.labels.__x",
            "labels starting with __ are Prometheus-internal",
        ),
        (
            "label a-b",
            {"alert": "A", "expr": "up", "labels": {"a-b": "v"}},
            f"{alerts}.labels.a-b",
            None,
        ),
        (
            "label é",
            {"record": "r", "expr": "up", "labels": {"é": "v"}},
            f"{alerts}.labels.é",
            None,
        ),
        (
            "label __name__",
            {"record": "r", "expr": "up", "labels": {"__name__": "v"}},
            f"{alerts}.labels.__name__",
            None,
        ),
        (
            "annotation a-b",
            {"alert": "A", "expr": "up", "annotations": {"a-b": "v"}},
            f"{alerts}.annotations.a-b",
            None,
        ),
        ("annotation __x", {"alert": "A", "expr": "up", "annotations": {"__x": "v"}}, None, None),
        ("record with for", {"record": "r", "expr": "up", "for": "5m"}, alerts, DROPPED),
        (
            "record with annotations",
            {"record": "r", "expr": "up", "annotations": {"a": "b"}},
            alerts,
            DROPPED,
        ),
    ]
    for case_id, rule, field, stricter in names:
        add(f"name:{case_id}", _custom(next(index), rule), field, stricter)

    events = "spec.sli.events.errorQuery"
    raw = "spec.sli.raw.errorRatioQuery"
    slis: list[tuple[str, dict[str, Any], str | None, str | None]] = [
        (
            "events ok",
            {"events": {"errorQuery": GOOD_EVENTS, "totalQuery": GOOD_TOTAL}},
            None,
            None,
        ),
        (
            "events +",
            {"events": {"errorQuery": GOOD_EVENTS + " +", "totalQuery": GOOD_TOTAL}},
            events,
            None,
        ),
        (
            "events nosuchfunc",
            {"events": {"errorQuery": "nosuchfunc(x[{{window}}])", "totalQuery": GOOD_TOTAL}},
            events,
            None,
        ),
        (
            "events scalar",
            {"events": {"errorQuery": f"scalar({GOOD_EVENTS})", "totalQuery": GOOD_TOTAL}},
            events,
            None,
        ),
        (
            "events matrix",
            {"events": {"errorQuery": "x[{{window}}]", "totalQuery": GOOD_TOTAL}},
            events,
            None,
        ),
        (
            "events subquery",
            {"events": {"errorQuery": "rate(x[{{window}}])[1h:]", "totalQuery": GOOD_TOTAL}},
            events,
            None,
        ),
        (
            "events regex",
            {
                "events": {
                    "errorQuery": "sum(rate(x{c=~'5**'}[{{window}}]))",
                    "totalQuery": GOOD_TOTAL,
                }
            },
            events,
            None,
        ),
        (
            "events limitk",
            {"events": {"errorQuery": "limitk(1, rate(x[{{window}}]))", "totalQuery": GOOD_TOTAL}},
            events,
            None,
        ),
        (
            "events total +",
            {"events": {"errorQuery": GOOD_EVENTS, "totalQuery": "+" + GOOD_TOTAL + "+"}},
            "spec.sli.events.totalQuery",
            None,
        ),
        (
            "events offset",
            {
                "events": {
                    "errorQuery": "sum(rate(x[{{window}}] offset {{window}}))",
                    "totalQuery": GOOD_TOTAL,
                }
            },
            None,
            None,
        ),
        (
            "events offset on an aggregation",
            {
                "events": {
                    "errorQuery": f"{GOOD_EVENTS} offset {{{{window}}}}",
                    "totalQuery": GOOD_TOTAL,
                }
            },
            events,
            None,
        ),
        ("raw ok", {"raw": {"errorRatioQuery": f"{GOOD_EVENTS} / {GOOD_TOTAL}"}}, None, None),
        (
            "raw scalar",
            {"raw": {"errorRatioQuery": f"scalar({GOOD_EVENTS} / {GOOD_TOTAL})"}},
            None,
            None,
        ),
        (
            "raw string",
            {"raw": {"errorRatioQuery": '"{{window}}"'}},
            raw,
            "a string is no error ratio; promtool only parses",
        ),
        (
            "raw trailing +",
            {"raw": {"errorRatioQuery": f"{GOOD_EVENTS} / {GOOD_TOTAL} +"}},
            raw,
            None,
        ),
        (
            "raw window as number",
            {"raw": {"errorRatioQuery": f"{GOOD_EVENTS} * {{{{window}}}}"}},
            raw,
            None,
        ),
    ]
    for case_id, sli, field, stricter in slis:
        add(f"sli:{case_id}", _slo(next(index), sli=sli), field, stricter)

    preset = "spec.sli.preset"
    presets: list[tuple[str, dict[str, Any], str | None, str | None]] = [
        ("selector quotes", {"selector": {"service": 'we"ird\\name'}}, None, None),
        ("selector newline tab nul", {"selector": {"service": "a\nb\tc\x00d\re"}}, None, None),
        ("selector template", {"selector": {"service": "{{ $value }}"}}, None, None),
        ("selector unicode", {"selector": {"service": "çå\u2028"}}, None, None),
        ("regex digits", {"errorStatusRegex": "5\\d\\d|429"}, None, None),
        ("regex posix", {"errorStatusRegex": "[[:digit:]]{3}"}, None, None),
        ("regex unicode class", {"errorStatusRegex": "5\\pN\\pN"}, None, None),
        ("regex open paren", {"errorStatusRegex": "5(.."}, f"{preset}.errorStatusRegex", None),
        ("regex close paren", {"errorStatusRegex": "5..)"}, f"{preset}.errorStatusRegex", None),
        ("regex nested repeat", {"errorStatusRegex": "5.**"}, f"{preset}.errorStatusRegex", None),
        ("regex perl named", {"errorStatusRegex": "(?<c>5..)"}, f"{preset}.errorStatusRegex", None),
        ("regex lookahead", {"errorStatusRegex": "(?=5)..."}, f"{preset}.errorStatusRegex", None),
        ("regex count", {"errorStatusRegex": "5{1001}"}, f"{preset}.errorStatusRegex", None),
        ("status __name__", {"statusLabel": "__name__"}, f"{preset}.statusLabel", None),
        (
            "status __code",
            {"statusLabel": "__code"},
            f"{preset}.statusLabel",
            "labels starting with __ are Prometheus-internal",
        ),
    ]
    for case_id, settings, field, stricter in presets:
        sli = {"preset": {"type": "http-availability", **settings}}
        add(f"preset:{case_id}", _slo(next(index), sli=sli), field, stricter)

    # Literal text Mirage writes into alerts (SLO labels, description) is never a template.
    for text in ("{{ $value }}", "{{", "}}{{", '{{ query "up" }}', "{{- x -}}"):
        add(f"literal-label:{text}", _slo(next(index), labels={"team": text}), None)
        add(f"literal-description:{text}", _slo(next(index), description=text), None)
    return cases


CASES = _cases()


# --- the two referees --------------------------------------------------------------------------


def _groups(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The rule groups Mirage renders from ``document`` (defaulted as validation does), valid
    or not: what Prometheus would be given without validation."""
    defaulted, _ = problems_of(document)
    meta = defaulted["metadata"]
    if defaulted["kind"] == "ServiceLevelObjective":
        slo = ServiceLevelObjectiveSpec.from_spec(defaulted["spec"])
        rule = build_prometheus_rule(
            name=meta["name"], namespace=NAMESPACE, slo=slo, slo_name=meta["name"], config=Config()
        )
    else:
        spec = MirageServiceSpec.from_spec(defaulted["spec"])
        rule = build_custom_rules(
            service=meta["name"],
            namespace=NAMESPACE,
            alerts=spec.monitoring.alerts,
            config=Config(),
        )
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def _promtool_errors(promtool: str, path: Path, groups: list[dict[str, Any]]) -> dict[str, str]:
    """promtool's first error per rule group name; ``""`` for an error of the whole file (a
    field its YAML decoder refuses, e.g. ``for: 5``)."""
    path.write_text(yaml.safe_dump({"groups": groups}, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    errors: dict[str, str] = {}
    for line in (result.stdout + result.stderr).splitlines():
        found = re.search(r'group "([^"]+)"', line)
        if found:
            errors.setdefault(found[1], line)
        elif line.startswith(str(path)):
            errors.setdefault("", line)
    assert (result.returncode == 0) is not errors, result.stdout + result.stderr
    return errors


def _decoded_by_promtool(document: dict[str, Any]) -> bool:
    """Whether the document has a field promtool's YAML decoder parses (``for``): an error
    there concerns the whole file, not a rule group."""
    alerts = document["spec"].get("monitoring", {}).get("alerts", [])
    return any("for" in rule for rule in alerts)


@pytest.fixture(scope="module")
def promtool_verdicts(promtool: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """promtool's error per case id (absent: promtool accepts): one run over the cases, each in
    its own rule group, and one run per case whose error would concern the whole file."""
    path = tmp_path_factory.mktemp("corpus") / "rules.yaml"
    by_case = {case.id: _groups(case.document) for case in CASES}
    alone = {case.id for case in CASES if _decoded_by_promtool(case.document)}
    owner = {group["name"]: case_id for case_id, groups in by_case.items() for group in groups}
    together = [g for case_id, groups in by_case.items() if case_id not in alone for g in groups]
    errors = _promtool_errors(promtool, path, together)
    assert "" not in errors, errors[""]
    verdicts = {owner[group]: error for group, error in errors.items()}
    for case_id in alone:
        case_errors = _promtool_errors(promtool, path, by_case[case_id])
        if case_errors:
            verdicts[case_id] = next(iter(case_errors.values()))
    return verdicts


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mirage_validate_and_promtool_agree(case: Case, promtool_verdicts: dict[str, str]) -> None:
    _, problems = problems_of(case.document)
    promtool_error = promtool_verdicts.get(case.id)
    if case.stricter:
        assert promtool_error is None, f"not stricter after all: {promtool_error}"
        assert problems, "Mirage accepts it"
    else:
        assert (not problems) is (promtool_error is None), (problems, promtool_error)
    if problems:
        assert case.field in [p.field for p in problems], problems


def test_every_kind_has_good_and_bad_cases() -> None:
    kinds: dict[str, set[bool]] = {}
    for case in CASES:
        kinds.setdefault(case.id.split(":")[0].removesuffix("-ok").removesuffix("-bad"), set()).add(
            case.field is None
        )
    both = {kind for kind, verdicts in kinds.items() if verdicts == {True, False}}
    assert {"expr", "template", "slo-template", "sli", "preset", "name", "for"} <= both


@pytest.mark.parametrize(
    "text", ["{{ $value }}", "{{", "a }} b {{ c", '{{ "{{" }}', "{{- x -}}", "`{{`", "{{{{"]
)
def test_literal_text_expands_to_itself(promtool: str, tmp_path: Path, text: str) -> None:
    # Prometheus' own template engine, through promtool test rules: the alert's label and
    # annotation come out exactly as written.
    rules = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {
                        "alert": "Literal",
                        "expr": "vector(1)",
                        "labels": {"text": literal(text)},
                        "annotations": {"text": literal(text)},
                    }
                ],
            }
        ]
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    test = {
        "rule_files": ["rules.yaml"],
        "tests": [
            {
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {
                        "eval_time": "1m",
                        "alertname": "Literal",
                        "exp_alerts": [
                            {"exp_labels": {"text": text}, "exp_annotations": {"text": text}}
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "test.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the tables of known names, held to promtool -----------------------------------------------

NEWER_FUNCTIONS = {  # name: a call the crate's type checker accepts
    "double_exponential_smoothing": "double_exponential_smoothing(x[5m], 0.5, 0.5)",
    "info": "info(x)",
    "sort_by_label": 'sort_by_label(x, "a")',
    "histogram_avg": "histogram_avg(x)",
}
NEWER_AGGREGATIONS = ("limitk", "limit_ratio")
NOT_TEMPLATE_FUNCTIONS = ("now", "toDuration", "urlUnescape", "humanizeTime", "nosuch")


def _check_file(promtool: str, tmp_path: Path, rules: list[dict[str, Any]]) -> str:
    groups = [{"name": f"g{i}", "rules": [rule]} for i, rule in enumerate(rules)]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr


def test_the_promql_function_table_is_promtools(promtool: str, tmp_path: Path) -> None:
    # Called without arguments: promtool names every function it does not know.
    names = [*sorted(promql.FUNCTIONS | promql.AGGREGATIONS), *NEWER_FUNCTIONS, *NEWER_AGGREGATIONS]
    out = _check_file(promtool, tmp_path, [{"record": "r", "expr": f"{n}()"} for n in names])
    unknown = set(re.findall(r'unknown function with name \\?"(\w+)', out))
    assert unknown == {*NEWER_FUNCTIONS, *NEWER_AGGREGATIONS}
    for call in NEWER_FUNCTIONS.values():
        assert "unknown function" in (promql.expression_problem(call) or "")
    for name in NEWER_AGGREGATIONS:
        assert "unknown aggregation" in (promql.expression_problem(f"{name}(1, x)") or "")
    for name in promql.AGGREGATIONS:
        assert "unknown" not in (promql.expression_problem(f"{name}(x)") or "")


def test_the_template_function_table_is_promtools(promtool: str, tmp_path: Path) -> None:
    names = sorted(alerttemplate.FUNCTIONS) + list(NOT_TEMPLATE_FUNCTIONS)
    rules = [
        {"alert": "A", "expr": "up", "annotations": {"a": f"{{{{ {name} }}}}"}} for name in names
    ]
    out = _check_file(promtool, tmp_path, rules)
    undefined = set(re.findall(r'function \\?"(\w+)\\?" not defined', out))
    assert undefined == set(NOT_TEMPLATE_FUNCTIONS)
    for name in NOT_TEMPLATE_FUNCTIONS:
        assert alerttemplate.template_problem(f"{{{{ {name} }}}}") is not None


# --- the issue's examples, as a user runs them -------------------------------------------------

ISSUE_EXAMPLES = {
    "custom expr": (
        "spec.monitoring.alerts[0].expr",
        {"alerts": [{"alert": "A", "expr": "up =="}]},
    ),
    "unknown function": (
        "spec.monitoring.alerts[0].expr",
        {"alerts": [{"record": "r", "expr": "nosuchfunc(x)"}]},
    ),
    "annotation": (
        "spec.monitoring.alerts[0].annotations.summary",
        {"alerts": [{"alert": "A", "expr": "up", "annotations": {"summary": "{{ $value "}}]},
    ),
    "SLO query ending in +": (
        "spec.monitoring.slos[0].sli.events.errorQuery",
        {
            "slos": [
                {
                    "name": "avail",
                    "objective": 99.9,
                    "sli": {"events": {"errorQuery": GOOD_EVENTS + " +", "totalQuery": GOOD_TOTAL}},
                }
            ]
        },
    ),
}


@pytest.mark.parametrize("example", list(ISSUE_EXAMPLES))
def test_mirage_validate_and_render_refuse_the_issue_examples(tmp_path: Path, example: str) -> None:
    field, monitoring = ISSUE_EXAMPLES[example]
    document = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": "shop", "namespace": NAMESPACE},
        "spec": {"image": "registry.example/api:1.2.3", "monitoring": monitoring},
    }
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    for command in ("validate", "render"):
        result = CliRunner().invoke(main, [command, str(path)])
        assert result.exit_code == 1, result.output
        assert f"MirageService/shop: {field}: " in result.output


# --- generated inputs, differential --------------------------------------------------------------


def _promtool_refusals(promtool: str, tmp_path: Path, rules: list[dict[str, Any]]) -> set[int]:
    out = _check_file(promtool, tmp_path, rules)
    return {int(found) for found in re.findall(r'group "g(\d+)"', out)}


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_expressions_mirage_accepts_load_in_promtool(
    promtool: str, tmp_path: Path, seed: int
) -> None:
    texts = generated.expressions(seed, 1500)
    refused = _promtool_refusals(promtool, tmp_path, [{"record": "r", "expr": t} for t in texts])
    ours = {i for i, text in enumerate(texts) if promql.expression_problem(text)}
    assert len(refused) > len(texts) // 2, "the generator should make many bad inputs"
    assert [texts[i] for i in sorted(refused - ours)] == []  # Mirage never lets one through
    assert [texts[i] for i in sorted(ours - refused)] == []


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_templates_mirage_accepts_load_in_promtool(
    promtool: str, tmp_path: Path, seed: int
) -> None:
    texts = generated.templates(seed, 1500)
    rules = [{"alert": "A", "expr": "up", "annotations": {"a": t}} for t in texts]
    refused = _promtool_refusals(promtool, tmp_path, rules)
    ours = {i for i, text in enumerate(texts) if alerttemplate.template_problem(text)}
    assert len(texts) // 4 < len(refused) < len(texts)
    assert [texts[i] for i in sorted(refused - ours)] == []
    assert [texts[i] for i in sorted(ours - refused)] == []
