"""Prometheus rule inputs checked as Prometheus 2.42 checks them: PromQL expressions, metric and
label names, durations.

Expressions are parsed by ``promql-parser`` (Python bindings of the Rust crate GreptimeDB uses,
which follows Prometheus 2.45's grammar), then held to the language of Prometheus 2.42 (the
``promtool`` of the Makefile, the referee of ``tests/rules/test_rule_corpus.py``): functions and
aggregations newer than 2.42 are refused, as are the parser's extensions (``or`` inside
selectors, quoted UTF-8 names) and the regular-expression forms Go's RE2 refuses but Rust's
``regex`` accepts. Where the two parsers may differ the check errs on the side of refusing.

Sources: prometheus/promql/parser/functions.go and lex.go (v2.42), prometheus/common/model
(names, durations), Go's regexp/syntax (limits).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re

import promql_parser

from mirage_operator.durations import DurationError, DurationRangeError, parse_prometheus

PARSED_CACHE = 4096
"""Expressions whose verdict is kept: a reconcile checks the same SLO queries and matchers
again at each run (parsing them was 3 % of the operator's CPU at a cold start of 1,000)."""

FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
        "delta", "deriv", "exp", "floor", "histogram_count", "histogram_sum",
        "histogram_fraction", "histogram_quantile", "holt_winters", "hour", "idelta",
        "increase", "irate", "label_replace", "label_join", "last_over_time", "ln", "log10",
        "log2", "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
        "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
        "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time",
        "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector",
        "year",
    }
)  # fmt: skip
"""Functions of Prometheus 2.42 (promql/parser/functions.go)."""

AGGREGATIONS = frozenset(
    {
        "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
        "count_values", "quantile",
    }
)  # fmt: skip
"""Aggregation operators of Prometheus 2.42."""

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Tokens of a PromQL text that promql-parser has accepted (for the lexical checks below).
_TOKENS = re.compile(
    r"""(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<word>[a-zA-Z_][a-zA-Z0-9_:]*)
    |(?P<number>(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)[a-zA-Z0-9_]*)
    |(?P<match>=~|!~|!=|==|>=|<=|=)
    |(?P<other>\S)""",
    re.VERBOSE,
)
_DURATION_TOKEN = re.compile(r"([0-9]+(ms|[smhdwy]))+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})
_BEFORE_OPERAND = frozenset(
    {"", "(", ",", "on()", "+", "-", "*", "/", "%", "^", "=", "==", "!=", ">", "<", ">=", "<="}
    | {"@"}
    | {"and", "or", "unless", "atan2", "bool"}
)
"""Tokens after which a ``+`` is unary."""


def _register_prometheus_2_functions() -> None:
    # holt_winters is the 2.x name of 3.x's double_exponential_smoothing, which the crate
    # knows; teach it the old one.
    matrix, scalar = promql_parser.ValueType.Matrix, promql_parser.ValueType.Scalar
    function = promql_parser.Function(
        "holt_winters", [matrix, scalar, scalar], promql_parser.ValueType.Vector
    )
    # ValueError: a later crate has it built in.
    with contextlib.suppress(ValueError):
        promql_parser.register_extra_functions([function])


_register_prometheus_2_functions()


def metric_name_problem(name: str) -> str | None:
    """Why ``name`` is not a Prometheus metric name (``[a-zA-Z_:][a-zA-Z0-9_:]*``), or None."""
    if _METRIC_NAME.fullmatch(name):
        return None
    return f"{name!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"


def label_name_problem(name: str) -> str | None:
    """Why ``name`` is not a label name a user may set (``[a-zA-Z_][a-zA-Z0-9_]*``, not
    starting with ``__``, which Prometheus reserves), or None."""
    if not _LABEL_NAME.fullmatch(name):
        return f"{name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
    if name.startswith("__"):
        return f"{name!r}: label names starting with __ are reserved for Prometheus"
    return None


def annotation_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an annotation of an alerting rule (rulefmt: a label name,
    ``__`` allowed), or None."""
    if _LABEL_NAME.fullmatch(name):
        return None
    return f"{name!r} is not an annotation name ([a-zA-Z_][a-zA-Z0-9_]*)"


def alert_name_problem(name: str) -> str | None:
    """Why ``name`` is not an alert name Mirage writes (a label name: Alertmanager routes and
    silences match on it, and PromQL selects ``ALERTS{alertname=...}``), or None."""
    if _LABEL_NAME.fullmatch(name):
        return None
    return f"{name!r} is not an alert name ([a-zA-Z_][a-zA-Z0-9_]*)"


def duration_problem(text: str) -> str | None:
    """Why ``text`` is not a Prometheus duration (``1h30m``, ``5m``, ``0``; units y w d h m s
    ms, each at most once, largest first), or None."""
    try:
        parse_prometheus(text)
    except DurationRangeError:
        return f"{text!r} is out of range (at most about 292 years)"
    except DurationError:
        return f"{text!r} is not a duration (e.g. 5m, 1h30m; units y, w, d, h, m, s, ms)"
    return None


@functools.lru_cache(maxsize=PARSED_CACHE)
def regex_problem(pattern: str) -> str | None:
    """Why Prometheus (Go's RE2) cannot compile the label-matcher regular expression
    ``pattern``, or None."""
    return expression_problem(f"x{{x=~{quote(pattern)}}}")


def _go_regex_problem(pattern: str) -> str | None:
    """What Go's regexp/syntax refuses and Rust's regex (promql-parser's) accepts: an unmatched
    ``)`` (Prometheus 2.42 parses the pattern before anchoring it), a repeat count above 1000
    or out of order, a repetition of a repetition (``a**``, ``a*??``), Perl's ``(?<name>``
    (Go 1.22+ only)."""
    depth, pos, repeated = 0, 0, False
    while pos < len(pattern):
        char = pattern[pos]
        pos += 1
        count = _REPEAT.match(pattern, pos - 1) if char == "{" else None
        if char in "*+?" or count is not None:
            if repeated:
                return f"invalid nested repetition operator in {pattern!r}"
            if count is not None:
                low, high = int(count[1]), int(count[3] or count[1])
                if high > 1000 or (count[2] and count[3] and low > high):
                    return f"invalid repeat count {count[0]!r} (at most 1000)"
                pos = count.end()
            if pattern.startswith("?", pos):  # non-greedy, part of this repetition
                pos += 1
            repeated = True
            continue
        repeated = False
        if char == "\\":
            if pattern.startswith("Q", pos):
                end = pattern.find("\\E", pos)
                pos = len(pattern) if end < 0 else end + 2
            else:
                pos += 1
        elif char == "[":
            pos, reason = _class_end(pattern, pos)
            if reason:
                return reason
        elif char == "(":
            if pattern.startswith("?<", pos) and not pattern.startswith(("?<=", "?<!"), pos):
                return "invalid named capture (write (?P<name>...))"
            depth += 1
        elif char == ")":
            if depth == 0:
                return "unexpected ) in the regular expression"
            depth -= 1
    return None


_REPEAT = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")


_POSIX_CLASSES = frozenset(
    {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct"}
    | {"space", "upper", "word", "xdigit"}
)


def _class_end(pattern: str, pos: int) -> tuple[int, str | None]:
    """Position after the character class whose ``[`` is just before ``pos``, and why Go
    refuses the class (an unknown ``[:name:]``), if it does."""
    if pattern.startswith("^", pos):
        pos += 1
    if pattern.startswith("]", pos):
        pos += 1
    while pos < len(pattern):
        if pattern.startswith("[:", pos):
            end = pattern.find(":]", pos + 2)
            if end >= 0:
                name = pattern[pos + 2 : end].removeprefix("^")
                if name not in _POSIX_CLASSES:
                    return pos, f"invalid character class range [:{name}:]"
                pos = end + 2
                continue
        if pattern[pos] == "\\":
            pos += 2
            continue
        if pattern[pos] == "]":
            return pos + 1, None
        pos += 1
    return pos, None


def quote(value: str) -> str:
    """A PromQL double-quoted string literal holding ``value`` exactly (control characters as
    ``\\xHH`` escapes, which the lexer would refuse raw)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", escaped)
    return f'"{escaped}"'


@functools.lru_cache(maxsize=PARSED_CACHE)
def expression_problem(expr: str) -> str | None:
    """Why Prometheus 2.42 cannot parse the PromQL expression ``expr``, or None."""
    if not expr.strip():
        return "empty expression"
    try:
        tree = promql_parser.parse(expr)
    except ValueError as exc:
        return _explained(expr, str(exc))
    problems: list[str] = []
    promql_parser.walk(tree, lambda node: _node_problems(node, problems))
    return problems[0] if problems else _lexical_problem(expr)


def _explained(expr: str, message: str) -> str:
    """The parser's message, with the one case it leaves vague made precise: an expression
    ending in an operator (``up ==``, ``a +``) lacks its right-hand side."""
    if message != "invalid promql query":
        return message
    tokens = [t[0] for t in _TOKENS.finditer(expr) if t.lastgroup != "comment"]
    last = tokens[-1] if tokens else ""
    if last in _BEFORE_OPERAND and last not in ("", "(", ","):
        return f"unexpected end of input after {last!r}: the operator has no right-hand side"
    return "syntax error: not a PromQL expression (check operators, parentheses and modifiers)"


def typed_expression_problem(expr: str, *, types: tuple[str, ...]) -> str | None:
    """Why ``expr`` is not a PromQL expression returning one of ``types`` (``vector``,
    ``scalar``, ``matrix``, ``string``), or None. An events SLI query must be a vector (Mirage
    joins it with ``or`` and ``/``); a raw error ratio may also be a scalar."""
    reason = expression_problem(expr)
    if reason is None:
        kind = _value_type(promql_parser.parse(expr))
        if kind not in types:
            reason = f"returns a {kind}, not {' or '.join(f'a {t}' for t in types)}"
    return reason


def _value_type(node: promql_parser.Expr) -> str:
    """``vector``, ``matrix``, ``scalar`` or ``string``: what a parsed expression returns."""
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return _value_type(node.expr)
    if isinstance(node, promql_parser.BinaryExpr):
        sides = {_value_type(node.lhs), _value_type(node.rhs)}
        return "vector" if "vector" in sides else "scalar"
    if isinstance(node, promql_parser.Call):
        return str(node.func.return_type).rsplit(".", 1)[-1].lower()
    if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        return "matrix"
    if isinstance(node, promql_parser.NumberLiteral):
        return "scalar"
    if isinstance(node, promql_parser.StringLiteral):
        return "string"
    return "vector"  # selectors and aggregations


def _lexical_problem(expr: str) -> str | None:
    """What Prometheus 2.42's lexer refuses in a text promql-parser accepted: a number without
    unit as a range or offset (``x[300]``), a duration as a number (``5m``), a quoted name in
    a selector or a grouping (``{"my.metric"}``, ``by ("a")``), a number out of range, and a
    unary ``+`` on a range (which promql-parser drops)."""
    stack: list[str] = []
    previous: list[str] = ["", "", ""]
    unary_plus: list[int] = []
    for token in _TOKENS.finditer(expr):
        kind, text = token.lastgroup, token[0]
        if kind == "comment":
            continue
        top = stack[-1] if stack else ""
        after_offset = _after_offset(previous)
        if kind == "number":
            is_duration = _DURATION_TOKEN.fullmatch(text) is not None
            if (top == "[" or after_offset) and not is_duration:
                return f"{text!r}: a range or offset needs a unit (e.g. 5m)"
            if is_duration and top != "[" and not after_offset:
                return f"unexpected duration {text!r}"
            if is_duration and (reason := duration_problem(text)):
                return reason
            if not is_duration and (reason := _number_problem(text)):
                return reason
        elif kind == "string":
            if top == "{" and previous[-1] not in _MATCH_OPS:
                return f"quoted names ({text}) are not PromQL of Prometheus 2.42"
            if top == "grouping":
                return f"quoted label names ({text}) are not PromQL of Prometheus 2.42"
        elif text == "+" and previous[-1] in _BEFORE_OPERAND:
            unary_plus.append(token.start())
        elif text in "{[":
            stack.append(text)
        elif text == "(":
            stack.append("grouping" if previous[-1] in _GROUPING else "(")
        elif text in ")]}" and stack:
            # After "on(a)" an operand follows, as after an operator.
            text = "on()" if stack.pop() == "grouping" else text
        previous = [*previous[1:], text]
    return _unary_plus_problem(expr, unary_plus)


def _unary_plus_problem(expr: str, positions: list[int]) -> str | None:
    """Prometheus type-checks a unary ``+`` as it does a unary ``-``; promql-parser drops it.
    Parse the text with each unary ``+`` read as ``-`` (same precedence) to check the same."""
    if not positions:
        return None
    text = list(expr)
    for position in positions:
        text[position] = "-"
    try:
        promql_parser.parse("".join(text))
    except ValueError as exc:
        if "unary" in str(exc):
            return str(exc)
    return None


def _number_problem(text: str) -> str | None:
    """Go's strconv refuses a number out of range (``1e400``, a hexadecimal above int64)."""
    try:
        value = float(int(text, 16)) if text[:2].lower() == "0x" else float(text)
    except ValueError:
        return None  # a form only promql-parser reads; it has already judged it
    if math.isinf(value) or (text[:2].lower() == "0x" and value > 2**63 - 1):
        return f"number {text!r} is out of range"
    return None


def _after_offset(previous: list[str]) -> bool:
    """Whether the next token is the duration of an ``offset`` modifier (``offset 5m``,
    ``offset -5m``): ``offset`` after an operand, not a metric named offset."""
    before, keyword = (previous[0], previous[1]) if previous[-1] == "-" else previous[1:]
    return keyword == "offset" and (before[-1:].isalnum() or before[-1:] in ("_", "]", "}", ")"))


def _node_problems(node: promql_parser.Expr, problems: list[str]) -> None:
    """Append to ``problems`` what 2.42 refuses in ``node`` itself (``None``: walk on)."""
    labels: list[str] = []
    if isinstance(node, promql_parser.Call):
        if node.func.name not in FUNCTIONS:
            problems.append(f"unknown function with name {node.func.name!r} (Prometheus 2.42)")
    elif isinstance(node, promql_parser.AggregateExpr):
        op = str(node.op)
        if op not in AGGREGATIONS:
            problems.append(f"unknown aggregation {op!r} (Prometheus 2.42)")
        if node.modifier is not None:
            labels += node.modifier.labels
    elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
        modifier = node.modifier
        fill = modifier.fill_values
        if fill is not None and (fill.lhs is not None or fill.rhs is not None):
            problems.append("fill modifiers are not PromQL of Prometheus 2.42")
        labels += modifier.matching.labels if modifier.matching else []
        labels += modifier.group_labels or []
    elif isinstance(node, promql_parser.UnaryExpr):
        kind = _value_type(node.expr)
        if kind not in ("vector", "scalar"):
            problems.append(f"unary expression only allowed on a scalar or vector, got a {kind}")
    elif isinstance(node, promql_parser.SubqueryExpr) and isinstance(
        node.expr, promql_parser.UnaryExpr
    ):
        # "-x[5m:]" is "-(x[5m:])" in Prometheus (unary binds looser than a subquery).
        problems.append("unary expression only allowed on a scalar or vector, got a matrix")
    elif isinstance(node, promql_parser.MatrixSelector):
        _selector_problems(node.vector_selector, problems)
    elif isinstance(node, promql_parser.VectorSelector):
        _selector_problems(node, problems)
    for label in labels:
        if not _LABEL_NAME.fullmatch(label):
            problems.append(f"{label!r} is not a label name")


def _selector_problems(selector: promql_parser.VectorSelector, problems: list[str]) -> None:
    if selector.name is not None and not _METRIC_NAME.fullmatch(selector.name):
        problems.append(f"{selector.name!r} is not a metric name")
    if selector.matchers.or_matchers:
        problems.append("'or' inside a selector is not PromQL of Prometheus 2.42")
    for matcher in selector.matchers.matchers:
        if not _LABEL_NAME.fullmatch(matcher.name):
            problems.append(f"{matcher.name!r} is not a label name")
        regex = matcher.op in (promql_parser.MatchOp.Re, promql_parser.MatchOp.NotRe)
        if regex and (reason := _go_regex_problem(matcher.value)):
            problems.append(reason)
