"""Generated PromQL expressions and alert templates, for differential tests against promtool.

Seeded, so that a run is reproducible: mostly well-formed inputs built from a small grammar
(selectors, matchers with tricky values and regular expressions, functions old and new,
aggregations, operators with modifiers, offsets, ``@``, subqueries, numbers and durations in
many spellings), a fifth of them with one character deleted.
"""

from __future__ import annotations

import random

_NAMES = ["x", "up", "job:up:sum", "_x", "offset", "bool", "sum", "inf", "by", "le", "é", "x.y"]
_LABELS = ["a", "job", "le", "__name__", "_b", "by", "offset", "é", "a-b"]
_VALUES = ['"b"', "'b'", "`b`", '""', '"\\n"', '"\\x41"', '"\\u00e9"', '"\\q"', "'\\\"'", '"{{"']
_REGEXES = [
    "5..", "a**", "a{1001}", "a{2,3}", "(?i)a", "(?<n>a)", "(?P<n>a)", "a)|(b", "[[:alpha:]]",
    "[[:alph:]]", "\\\\pN", "\\\\d+", "\\\\Z", "\\\\z", "a*?", "a+*", "[]a]", "(?s).*", "a{,2}",
    "\\\\C", "\\\\b", "[a-", "x|", "()", "\\\\1", "a{0}", "a{3,2}", "\\\\x{41}",
]  # fmt: skip
_DURATIONS = ["5m", "1h30m", "300", "0s", "1y", "1w2d", "5m1h", "1ms", "1.5h", "0", "5M", "90s"]
_NUMBERS = ["1", "1.5", "0x1F", "1e3", "Inf", "-Inf", "NaN", "1_000", ".5", "5.", "1h", "1e400"]
_FUNCTIONS = [
    "rate", "increase", "abs", "sort", "vector", "scalar", "time", "absent", "label_replace",
    "histogram_quantile", "holt_winters", "predict_linear", "clamp", "round", "timestamp",
    "last_over_time", "present_over_time", "quantile_over_time", "nosuch", "info",
    "sort_by_label", "double_exponential_smoothing", "mad_over_time", "pi",
]  # fmt: skip
_AGGREGATIONS = ["sum", "avg", "count", "max", "group", "topk", "count_values", "quantile"]
_AGGREGATIONS += ["limitk", "limit_ratio"]
_OPERATORS = ["+", "-", "*", "/", "%", "^", "==", "!=", ">", "<=", "and", "or", "unless"]
_MODIFIERS = [
    "",
    "",
    " bool",
    " on(a)",
    " ignoring(a)",
    " on(a) group_left",
    " on() group_right(b)",
]


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, items: list[str]) -> str:
        return self.rng.choice(items)

    def selector(self) -> str:
        matchers = []
        for _ in range(self.rng.randint(0, 2)):
            op = self.pick(["=", "!=", "=~", "!~"])
            value = self.pick(_VALUES) if op in ("=", "!=") else f'"{self.pick(_REGEXES)}"'
            matchers.append(f"{self.pick(_LABELS)}{op}{value}")
        name = self.pick([*_NAMES, ""])
        if matchers or not name or self.rng.random() < 0.2:
            return name + "{" + ",".join(matchers) + "}"
        return name

    def expr(self, depth: int = 0) -> str:
        kind = self.rng.randint(0, 9) if depth < 3 else self.rng.randint(0, 1)

        def inner() -> str:
            return self.expr(depth + 1)

        if kind == 0:
            return self.selector()
        if kind == 1:
            return self.pick(_NUMBERS)
        if kind == 2:
            args = [
                self.pick([f"{self.selector()}[{self.pick(_DURATIONS)}]", inner(), "'s'", "1"])
                for _ in range(self.rng.randint(0, 3))
            ]
            return f"{self.pick(_FUNCTIONS)}({', '.join(args)})"
        if kind == 3:
            grouping = self.pick(["", " by (a)", " without (a, b)"])
            param = self.pick(["", "1, ", "'v', "])
            return f"{self.pick(_AGGREGATIONS)}{grouping}({param}{inner()})"
        if kind == 4:
            return f"{inner()} {self.pick(_OPERATORS)}{self.pick(_MODIFIERS)} {inner()}"
        if kind == 5:
            return f"({inner()})"
        if kind == 6:
            return f"{inner()} offset {self.pick(['', '-'])}{self.pick(_DURATIONS)}"
        if kind == 7:
            return f"{inner()} @ {self.pick(['start()', 'end()', '100', '-1'])}"
        if kind == 8:
            step = self.pick(["", *_DURATIONS])
            return f"({inner()})[{self.pick(_DURATIONS)}:{step}]"
        return f"{self.pick(['-', '+'])}{inner()}"

    def mutate(self, text: str) -> str:
        if self.rng.random() < 0.2 and len(text) > 2:
            cut = self.rng.randrange(len(text))
            return text[:cut] + text[cut + 1 :]
        return text


_TEMPLATE_PIECES = [
    "{{", "}}", "{{-", "-}}", " ", "$value", "$labels", "$x", "$", ".", ".Labels", "|", "(", ")",
    '"a"', '"\\n"', '"\\q"', "`r`", "'a'", "'ab'", "1", "-1", "1.5", "0x1f", "1e3", "08", "1_0",
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "nil", "true",
    ":=", "=", ",", "humanize", "printf", "nosuch", "query", "first", "/*", "*/", "text", "\n",
    "+", "-", "{", "}", "é", "\x01", "$labels.job", "1i", "'\\''", "(print 1)", "eq",
]  # fmt: skip


def expressions(seed: int, count: int) -> list[str]:
    """``count`` generated PromQL texts (not blank)."""
    generator = _Generator(seed)
    texts = (generator.mutate(generator.expr()) for _ in range(count))
    return [text for text in texts if text.strip()]


def templates(seed: int, count: int) -> list[str]:
    """``count`` generated alert template texts, most inside an action."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        text = "".join(rng.choice(_TEMPLATE_PIECES) for _ in range(rng.randint(1, 9)))
        texts.append("{{ " + text + " }}" if rng.random() < 0.7 else text)
    return texts
