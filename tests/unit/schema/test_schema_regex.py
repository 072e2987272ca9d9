"""RE2 patterns that Python's re spells differently still validate as the apiserver does."""

from __future__ import annotations

import pytest

from mirage_operator.schema import validate
from mirage_operator.schema.regex import translate


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("^(?i)(abort|warn)?$", "ABORT", True),
        ("^(?i)(abort|warn)?$", "", True),
        ("^(?i)(abort|warn)?$", "stop", False),
        ("^a(?i)b$", "aB", True),
        ("^a(?i)b$", "AB", False),
        (r"^x\z", "x", True),
    ],
)
def test_re2_pattern_keyword(pattern: str, value: str, matches: bool) -> None:
    problems = validate({"type": "string", "pattern": pattern}, value)
    assert (problems == []) is matches


def test_plain_patterns_are_left_alone() -> None:
    assert translate(r"^[a-z]+(\.[a-z]+)*") == r"^[a-z]+(\.[a-z]+)*"


# Go's $ is the end of the text (without the m flag), Python's also matches before a final
# newline; Go's \d, \w and \s are ASCII only. Every pair is (pattern, value Go refuses).
@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "hello\n"),
        ("^[1-9][0-9]*d$", "30d\n"),
        ("^(0|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$", "1h\n"),
        ("^[0-9]+(ms|s|m|h)$", "5s\n"),
        ("^([0-9]+%?)$", "25%\n"),
        ("^[^/\\s?#%]+(/[^/\\s?#%]+)*$", "team/x\n"),
        ("^(?i)(abort|warn)?$", "warn\n"),
        ("^[$a]+$", "a\n"),
        ("^\\d+$", "\u0661\u0662"),  # Arabic-Indic digits
        ("^\\w+$", "\u00e9t\u00e9"),
        ("^a\\s?b$", "a\u2003b"),  # an em space is not in RE2's \s
    ],
)
def test_go_semantics_refuse_what_go_refuses(pattern: str, value: str) -> None:
    assert validate({"type": "string", "pattern": pattern}, value) != []


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("(?m)^a$", "b\na"),  # with the m flag $ is the end of a line, as in Go
        ("^[]$]x$", "$x"),  # $ inside a class is a character
        ("^[^]$]$", "a"),
        ("^a\\$$", "a$"),  # an escaped $ is a character
        ("^x\\z", "x"),
    ],
)
def test_dollar_keeps_its_meaning_where_go_gives_it_another(pattern: str, value: str) -> None:
    assert validate({"type": "string", "pattern": pattern}, value) == []


def test_cel_matches_follows_go_too() -> None:
    schema = {
        "type": "string",
        "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')", "message": "lower"}],
    }
    assert validate(schema, "abc") == []
    assert validate(schema, "abc\n") != []
