"""Validation of an object against a structural schema, worded like the apiserver.

The apiserver runs, in order: the OpenAPI keyword validator (kube-openapi), the list-type
uniqueness check, then the CEL rules, and it skips the CEL rules when a value had the wrong
type. :func:`validate` does the same; within each phase problems come in document order (the
object's key order, ``required`` names in schema order), so the output is deterministic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from mirage_operator.errors import Problem
from mirage_operator.schema import cel, formats, reasons
from mirage_operator.schema.listtypes import check_list_type
from mirage_operator.schema.regex import compile_re2
from mirage_operator.schema.values import (
    ROOT_PATH,
    child,
    index,
    is_integer,
    is_number,
    json_equal,
    json_type,
    key,
    shown,
)

CEL_SKIPPED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


def validate(schema: Mapping[str, Any], obj: Any, *, old: Any = None) -> list[Problem]:
    """Every problem of ``obj`` (and, for transition rules, of ``obj`` versus ``old``)."""
    checker = _Checker()
    checker.check(schema, obj, "", root=True)
    problems = checker.problems
    if cel.has_rules(schema):
        if checker.type_error:
            problems.append(Problem(ROOT_PATH, reasons.invalid(None, CEL_SKIPPED)))
        else:
            problems.extend(cel.validate_rules(schema, obj, old))
    return problems


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        return compile_re2(pattern)
    except re.error:
        return None


def _type_ok(expected: str, value: Any) -> bool:
    if expected == "integer":
        return is_integer(value)
    if expected == "number":
        return is_number(value)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "object":
        return isinstance(value, Mapping)
    if expected == "array":
        return isinstance(value, list)
    return True


def _multiple_of(value: float, factor: float) -> bool:
    if isinstance(value, int) and isinstance(factor, int):
        return value % factor == 0
    quotient = value / factor
    if math.isinf(quotient) or math.isnan(quotient):
        return False
    return abs(quotient - round(quotient)) < 1e-9 * max(1.0, abs(quotient))


class _Checker:
    """Walks one value with its schema, collecting problems in document order."""

    __slots__ = ("problems", "type_error")

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.type_error = False

    def _add(self, path: str, reason: str) -> None:
        self.problems.append(Problem(shown(path), reason))

    def _body(self, path: str, detail: str) -> str:
        return f"{shown(path)} in body {detail}"

    def check(
        self, schema: Mapping[str, Any], value: Any, path: str, *, root: bool = False
    ) -> None:
        """Check ``value`` at ``path`` against ``schema`` and everything below it."""
        if not self._check_type(schema, value, path):
            return
        if value is None:
            self._check_enum(schema, value, path)
            return
        if isinstance(value, str):
            self._check_string(schema, value, path)
        elif is_number(value):
            self._check_number(schema, value, path)
        self._check_enum(schema, value, path)
        self._check_junctors(schema, value, path)
        if isinstance(value, list):
            self._check_array(schema, value, path)
        elif isinstance(value, Mapping):
            self._check_object(schema, value, path, root=root)

    def _type_problem(self, path: str, expected: str, actual: str) -> None:
        self.type_error = True
        detail = self._body(path, f"must be of type {expected}: {reasons.go_quote(actual)}")
        self._add(path, reasons.invalid(actual, detail))

    def _check_type(self, schema: Mapping[str, Any], value: Any, path: str) -> bool:
        """Type and nullability; ``False`` when nothing more can be checked here."""
        expected = schema.get("type")
        int_or_string = schema.get("x-kubernetes-int-or-string") is True
        if value is None:
            if schema.get("nullable") is True or not (expected or int_or_string):
                return True
            self._type_problem(path, "integer,string" if int_or_string else str(expected), "null")
            return False
        if int_or_string:
            if is_integer(value) or isinstance(value, str):
                return True
            self._type_problem(path, "integer,string", json_type(value))
            return False
        if expected and not _type_ok(expected, value):
            self._type_problem(path, expected, json_type(value))
            return False
        return True

    def _check_enum(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        allowed = schema.get("enum")
        if allowed is None or any(json_equal(value, a) for a in allowed):
            return
        self._add(path, reasons.unsupported(value, allowed))

    def _check_string(self, schema: Mapping[str, Any], value: str, path: str) -> None:
        max_length = schema.get("maxLength")
        if max_length is not None and len(value) > max_length:
            self._add(path, reasons.too_long(max_length))
        min_length = schema.get("minLength")
        if min_length is not None and len(value) < min_length:
            detail = self._body(path, f"should be at least {min_length} chars long")
            self._add(path, reasons.invalid(value, detail))
        pattern = schema.get("pattern")
        if pattern is not None:
            compiled = _pattern(pattern)
            if compiled is not None and not compiled.search(value):
                detail = self._body(path, f"should match '{pattern}'")
                self._add(path, reasons.invalid(value, detail))
        fmt = schema.get("format")
        if fmt and not formats.string_format_ok(fmt, value):
            detail = self._body(path, f"must be of type {fmt}: {reasons.go_quote(value)}")
            self._add(path, reasons.invalid(value, detail))

    def _check_number(self, schema: Mapping[str, Any], value: float, path: str) -> None:
        maximum = schema.get("maximum")
        if maximum is not None:
            if schema.get("exclusiveMaximum") is True:
                if value >= maximum:
                    self._bound(path, value, f"less than {reasons.go_float(float(maximum))}")
            elif value > maximum:
                limit = reasons.go_float(float(maximum))
                self._bound(path, value, f"less than or equal to {limit}")
        minimum = schema.get("minimum")
        if minimum is not None:
            if schema.get("exclusiveMinimum") is True:
                if value <= minimum:
                    self._bound(path, value, f"greater than {reasons.go_float(float(minimum))}")
            elif value < minimum:
                limit = reasons.go_float(float(minimum))
                self._bound(path, value, f"greater than or equal to {limit}")
        factor = schema.get("multipleOf")
        if factor and not _multiple_of(value, factor):
            self._bound(path, value, f"a multiple of {reasons.go_float(float(factor))}")
        fmt = schema.get("format")
        if fmt and is_integer(value) and not formats.int_format_ok(fmt, int(value)):
            detail = self._body(path, f"must be of type {fmt}: {reasons.go_quote(str(value))}")
            self._add(path, reasons.invalid(value, detail))

    def _bound(self, path: str, value: float, what: str) -> None:
        self._add(path, reasons.invalid(value, self._body(path, f"should be {what}")))

    def _check_size(self, schema: Mapping[str, Any], what: str, size: int, path: str) -> None:
        """``max``/``min`` of ``what`` (``Items`` or ``Properties``) against ``size``."""
        most, least = schema.get(f"max{what}"), schema.get(f"min{what}")
        if most is not None and size > most:
            self._add(path, reasons.too_many(size, most))
        if least is not None and size < least:
            detail = self._body(path, f"should have at least {least} {what.lower()}")
            self._add(path, reasons.invalid(size, detail))

    def _check_array(self, schema: Mapping[str, Any], value: list[Any], path: str) -> None:
        self._check_size(schema, "Items", len(value), path)
        if schema.get("uniqueItems") is True and _has_duplicates(value):
            self._add(path, reasons.invalid("", self._body(path, "shouldn't contain duplicates")))
        self.problems.extend(check_list_type(schema, value, path))
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                self.check(items, item, index(path, i))

    def _check_object(
        self, schema: Mapping[str, Any], value: Mapping[str, Any], path: str, *, root: bool
    ) -> None:
        self._check_size(schema, "Properties", len(value), path)
        for name in schema.get("required") or ():
            if name not in value:
                self._add(child(path, name), reasons.required())
        if schema.get("x-kubernetes-embedded-resource") is True and not root:
            for name in ("apiVersion", "kind"):
                if not value.get(name):
                    self._add(child(path, name), reasons.required("must not be empty"))
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        value_schema = additional if isinstance(additional, Mapping) else None
        for name, item in value.items():
            sub = properties.get(name)
            if sub is not None:
                self.check(sub, item, child(path, name))
            elif value_schema is not None:
                self.check(value_schema, item, key(path, name))

    def _check_junctors(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        for sub in schema.get("allOf") or ():
            self.check(sub, value, path)
        any_of = schema.get("anyOf")
        if any_of:
            results = [self._sub(sub, value, path) for sub in any_of]
            if all(results):
                where = reasons.go_quote(shown(path))
                detail = f"{where} must validate at least one schema (anyOf)"
                self._add(path, reasons.invalid("", detail))
                self.problems.extend(_fewest(results))
        one_of = schema.get("oneOf")
        if one_of:
            results = [self._sub(sub, value, path) for sub in one_of]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
                where = reasons.go_quote(shown(path))
                detail = f"{where} must validate one and only one schema (oneOf). {found}"
                self._add(path, reasons.invalid("", detail))
                if valid == 0:
                    self.problems.extend(_fewest(results))
        negated = schema.get("not")
        if isinstance(negated, Mapping) and not self._sub(negated, value, path):
            where = reasons.go_quote(shown(path))
            self._add(path, reasons.invalid("", f"{where} must not validate the schema (not)"))

    @staticmethod
    def _sub(schema: Mapping[str, Any], value: Any, path: str) -> list[Problem]:
        checker = _Checker()
        checker.check(schema, value, path)
        return checker.problems


def _fewest(results: list[list[Problem]]) -> list[Problem]:
    """The failures of the alternative that came closest (the first of those with fewest)."""
    best = results[0]
    for result in results[1:]:
        if len(result) < len(best):
            best = result
    return best


def _has_duplicates(items: list[Any]) -> bool:
    return any(json_equal(a, b) for i, a in enumerate(items) for b in items[i + 1 :])
