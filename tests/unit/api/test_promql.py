"""The PromQL and alert-template checks on their own (no promtool: the corpus in
tests/rules/test_rule_corpus.py holds them to promtool)."""

from __future__ import annotations

import promql_parser
import pytest

from mirage_operator.api import alerttemplate, promql


@pytest.mark.parametrize(
    "value", ["plain", 'we"ird\\name', "new\nline\ttab\rcr\x00nul\x7f", "çå\u2028", "{{ x }}", ""]
)
def test_quote_round_trips_through_the_parser(value: str) -> None:
    selector = promql_parser.parse(f"x{{a={promql.quote(value)}}}")
    assert isinstance(selector, promql_parser.VectorSelector)
    (matcher,) = selector.matchers.matchers
    assert matcher.value == value


@pytest.mark.parametrize(
    ("expr", "types", "ok"),
    [
        ("sum(rate(x[5m]))", ("vector",), True),
        ("x / on() group_left vector(1)", ("vector",), True),
        ("scalar(x)", ("vector",), False),
        ("scalar(x)", ("vector", "scalar"), True),
        ("1 + 1", ("vector",), False),
        ("-(x)", ("vector",), True),
        ("x[5m]", ("vector",), False),
        ("rate(x[5m])[1h:]", ("vector", "scalar"), False),
        ('"text"', ("vector", "scalar"), False),
        ("time() * x", ("vector",), True),
    ],
)
def test_typed_expression_problem(expr: str, types: tuple[str, ...], ok: bool) -> None:
    assert (promql.typed_expression_problem(expr, types=types) is None) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("5m", True),
        ("1h30m", True),
        ("0", True),
        ("292y", True),
        ("293y", False),
        ("30m1h", False),
        ("1.5h", False),
        ("", False),
        ("5m\n", False),
        ("5", False),
    ],
)
def test_duration_problem(text: str, ok: bool) -> None:
    assert (promql.duration_problem(text) is None) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("team", True), ("_x1", True), ("__x", False), ("a-b", False), ("1a", False), ("é", False)],
)
def test_label_name_problem(name: str, ok: bool) -> None:
    assert (promql.label_name_problem(name) is None) is ok


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("5..", True),
        ("5\\d\\d|429", True),
        ("a*?b+?", True),
        ("[)(]", True),
        ("[[:alpha:])]", True),
        ("a{2,1000}", True),
        ("a{,5}", True),  # not a repetition in Go: literal text
        ("a{1001}", False),
        ("a{3,2}", False),
        ("a**", False),
        ("a*??", False),
        ("a)", False),
        ("(a", False),
        ("(?<n>a)", False),
    ],
)
def test_regex_problem(pattern: str, ok: bool) -> None:
    assert (promql.regex_problem(pattern) is None) is ok


@pytest.mark.parametrize(
    "text", ["plain", "{{ $value }}", "{{", "}}", "a {{ b }} c {{{", '{{ "{{" }}', "{{- x -}}"]
)
def test_literal_is_a_template_that_parses(text: str) -> None:
    written = alerttemplate.literal(text)
    assert alerttemplate.template_problem(written) is None
    # Only "{{" changes: the text between the inserted actions is the original.
    assert written.replace('{{ "{{" }}', "{{") == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{{ $value ", "unclosed action"),
        ("{{ nosuch }}", "function 'nosuch' not defined"),
        ("{{ $x }}", "undefined variable '$x'"),
        ("{{ if 1 }}", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ break }}", "outside {{range}}"),
        ("{{ 08 }}", "integer overflow"),
        ("{{ print 1 | 2 }}", "non executable command"),
    ],
)
def test_template_problem_says_why(text: str, words: str) -> None:
    assert words in (alerttemplate.template_problem(text) or "")


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("up ==", "after '==': the operator has no right-hand side"),
        ("sum(rate(x[5m])) +", "after '+'"),
        ("up >= ", "after '>='"),
        ("x y", "syntax error"),
        ("sum(", "unclosed left parenthesis"),
        ("nosuchfunc(x)", "unknown function"),
        ("limitk(1, x)", "unknown aggregation 'limitk' (Prometheus 2.42)"),
        ("x[300]", "needs a unit"),
        ('{"my.metric"}', "quoted names"),
    ],
)
def test_expression_problem_says_why(expr: str, words: str) -> None:
    assert words in (promql.expression_problem(expr) or "")
