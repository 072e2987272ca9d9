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
    assert translate(r"^[a-z]+(\.[a-z]+)*$") == r"^[a-z]+(\.[a-z]+)*$"
