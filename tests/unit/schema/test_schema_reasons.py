"""Go-style printing of bad values, as ``field.Error`` renders them."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.schema import reasons


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (None, '"null"'),
        (True, "true"),
        (-1, "-1"),
        (10.0, "10"),
        (0.5, "0.5"),
        (1e21, "1e+21"),
        (1e-05, "1e-05"),
        ('a"b', '"a\\"b"'),
        ({"b": 1, "a": "x"}, 'map[string]interface {}{"a":"x", "b":1}'),
        (["a", 1, None], '[]interface {}{"a", 1, interface {}(nil)}'),
    ],
)
def test_go_value(value: Any, printed: str) -> None:
    assert reasons.go_value(value) == printed


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (reasons.required(), "Required value"),
        (reasons.required("must not be empty"), "Required value: must not be empty"),
        (reasons.forbidden("nope"), "Forbidden: nope"),
        (reasons.too_long(5), "Too long: may not be longer than 5"),
        (reasons.too_many(4, 3), "Too many: 4: must have at most 3 items"),
        (
            reasons.unsupported("x", ["a", 1, True]),
            'Unsupported value: "x": supported values: "a", "1", "true"',
        ),
        (reasons.duplicate("a"), 'Duplicate value: "a"'),
        (reasons.invalid(3, "bad"), "Invalid value: 3: bad"),
    ],
)
def test_reason_bodies(reason: str, expected: str) -> None:
    assert reason == expected
