"""CEL ``x-kubernetes-validations`` through celpy: rules, messages, transitions, library."""

from __future__ import annotations

from typing import Any

import pytest

from mirage_operator.errors import Problem
from mirage_operator.schema import cel, validate
from mirage_operator.schema.cel import (
    compile_rule,
    escape_property,
    join_field_path,
    validate_rules,
)

SCALING: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                }
            ],
            "properties": {
                "minReplicas": {"type": "integer"},
                "maxReplicas": {"type": "integer"},
            },
        }
    },
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"minReplicas": 1, "maxReplicas": 3}, []),
        ({"minReplicas": 3, "maxReplicas": 3}, []),
        (
            {"minReplicas": 4, "maxReplicas": 3},
            [Problem("spec", 'Invalid value: "object": minReplicas must not exceed maxReplicas')],
        ),
    ],
)
def test_cross_field_rule(spec: dict[str, Any], expected: list[Problem]) -> None:
    assert validate(SCALING, {"spec": spec}) == expected


def _rule_schema(rule: dict[str, Any], properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [rule],
                "properties": properties
                or {
                    "replicas": {"type": "integer"},
                    "name": {"type": "string"},
                    "ports": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "port": {"type": "integer"},
                            },
                        },
                    },
                },
            }
        },
    }


@pytest.mark.parametrize(
    ("rule", "spec", "expected"),
    [
        pytest.param(
            {"rule": "self.replicas > 0"},
            {"replicas": 0},
            Problem("spec", 'Invalid value: "object": failed rule: self.replicas > 0'),
            id="no-message",
        ),
        pytest.param(
            {"rule": "self.replicas > 0", "message": "  replicas must be positive  "},
            {"replicas": 0},
            Problem("spec", 'Invalid value: "object": replicas must be positive'),
            id="message-trimmed",
        ),
        pytest.param(
            {
                "rule": "self.replicas <= 10",
                "message": "too many",
                "messageExpression": "'replicas is ' + string(self.replicas) + ', max 10'",
            },
            {"replicas": 11},
            Problem("spec", 'Invalid value: "object": replicas is 11, max 10'),
            id="message-expression",
        ),
        pytest.param(
            {
                "rule": "self.replicas <= 10",
                "message": "too many",
                "messageExpression": "self.missing + 'x'",
            },
            {"replicas": 11},
            Problem("spec", 'Invalid value: "object": too many'),
            id="failing-message-expression-falls-back",
        ),
        pytest.param(
            {"rule": "self.replicas <= 10", "messageExpression": "''"},
            {"replicas": 11},
            Problem("spec", 'Invalid value: "object": failed rule: self.replicas <= 10'),
            id="empty-message-expression-falls-back",
        ),
        pytest.param(
            {"rule": "self.replicas > 0", "message": "positive", "fieldPath": ".replicas"},
            {"replicas": 0},
            Problem("spec.replicas", 'Invalid value: "object": positive'),
            id="field-path",
        ),
        pytest.param(
            {"rule": "self.ports[1].port > 0", "message": "m", "fieldPath": ".ports[1].port"},
            {"ports": [{"port": 1}, {"port": 0}]},
            Problem("spec.ports[1].port", 'Invalid value: "object": m'),
            id="field-path-with-index",
        ),
        pytest.param(
            {
                "rule": "has(self.name)",
                "message": "name is required",
                "reason": "FieldValueRequired",
                "fieldPath": ".name",
            },
            {},
            Problem("spec.name", "Required value: name is required"),
            id="reason-required",
        ),
        pytest.param(
            {
                "rule": "!has(self.name)",
                "message": "do not set name",
                "reason": "FieldValueForbidden",
            },
            {"name": "x"},
            Problem("spec", "Forbidden: do not set name"),
            id="reason-forbidden",
        ),
        pytest.param(
            {"rule": "self.ports.map(p, p.name).size() == 1", "reason": "FieldValueDuplicate"},
            {"ports": [{"name": "a"}, {"name": "b"}]},
            Problem("spec", 'Duplicate value: "object"'),
            id="reason-duplicate",
        ),
        pytest.param(
            {"rule": "self.name == 'x'", "message": "m"},
            {},
            Problem("spec", 'Invalid value: "object": no such key: name evaluating rule: m'),
            id="runtime-error-missing-key",
        ),
        pytest.param(
            {"rule": "self.replicas +", "message": "m"},
            {"replicas": 1},
            Problem(
                "spec",
                'Invalid value: "self.replicas +": compilation failed: '
                "ERROR: <input>:1:15: Syntax error: unexpected '+'",
            ),
            id="syntax-error-is-a-problem",
        ),
        pytest.param(
            {"rule": "self.name.noSuchFunction()"},
            {"name": "a"},
            Problem(
                "spec",
                'Invalid value: "self.name.noSuchFunction()": compilation failed: '
                "ERROR: undeclared reference to 'noSuchFunction' (in container '')",
            ),
            id="unknown-function-is-a-compile-error",
        ),
    ],
)
def test_rule_failures(rule: dict[str, Any], spec: dict[str, Any], expected: Problem) -> None:
    assert validate(_rule_schema(rule), {"spec": spec}) == [expected]


IMMUTABLE_NAME: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "name is immutable"}
                    ],
                },
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["key"],
                    "items": {
                        "type": "object",
                        "required": ["key"],
                        "x-kubernetes-validations": [
                            {
                                "rule": "self.size >= oldSelf.size",
                                "messageExpression": (
                                    "'size of ' + self.key + ' may only grow, was ' "
                                    "+ string(oldSelf.size)"
                                ),
                            }
                        ],
                        "properties": {"key": {"type": "string"}, "size": {"type": "integer"}},
                    },
                },
                "atomic": {
                    "type": "array",
                    "items": {
                        "type": "integer",
                        "x-kubernetes-validations": [{"rule": "self == oldSelf"}],
                    },
                },
            },
        }
    },
}


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        pytest.param({"name": "a"}, None, [], id="create-skips-transition-rules"),
        pytest.param({"name": "a"}, {"name": "a"}, [], id="unchanged"),
        pytest.param(
            {"name": "b"},
            {"name": "a"},
            [Problem("spec.name", 'Invalid value: "string": name is immutable')],
            id="changed",
        ),
        pytest.param({"name": "b"}, {}, [], id="old-value-absent"),
        pytest.param(
            {"items": [{"key": "x", "size": 1}, {"key": "y", "size": 5}]},
            {"items": [{"key": "y", "size": 6}, {"key": "x", "size": 1}]},
            [Problem("spec.items[1]", 'Invalid value: "object": size of y may only grow, was 6')],
            id="list-map-items-correlate-by-key",
        ),
        pytest.param(
            {"items": [{"key": "new", "size": 0}]},
            {"items": [{"key": "old", "size": 9}]},
            [],
            id="new-list-map-item-has-no-old-self",
        ),
        pytest.param({"atomic": [2]}, {"atomic": [1]}, [], id="atomic-list-items-never-correlate"),
    ],
)
def test_transition_rules(
    new: dict[str, Any], old: dict[str, Any] | None, expected: list[Problem]
) -> None:
    old_obj = None if old is None else {"spec": old}
    assert validate(IMMUTABLE_NAME, {"spec": new}, old=old_obj) == expected


LIBRARY: list[tuple[str, bool]] = [
    ("has(self.name) && !has(self.missing)", True),
    ("size(self.ports) == 2 && self.ports.size() == 2 && self.name.size() == 5", True),
    ("self.ports.all(p, p.port > 0)", True),
    ("self.ports.exists(p, p.name == 'grpc')", True),
    ("self.ports.exists_one(p, p.port > 8000)", True),
    ("self.ports.map(p, p.port) == [80, 9090]", True),
    ("self.ports.filter(p, p.port > 100).size() == 1", True),
    ("self.name.matches('^[a-z]+-[0-9]$')", True),
    ("self.name.startsWith('web') && self.name.endsWith('-1') && self.name.contains('b-')", True),
    ("int('42') == 42 && string(self.replicas) == '3' && double(self.replicas) == 3.0", True),
    ("'app' in self.labels && !('tier' in self.labels)", True),
    ("80 in self.ports.map(p, p.port)", True),
    ("self.labels.app == 'web' && self.labels['app'] == 'web'", True),
    ("self.ratio < 1.0 && self.ratio == 0.25", True),
    ("self.replicas * 2 == 6 && self.replicas / 2 == 1 && self.replicas % 2 == 1", True),
    ("self.replicas > 1 ? self.name == 'web-1' : false", True),
    ("self.name.lowerAscii() == 'web-1' && self.name.upperAscii() == 'WEB-1'", True),
    ("self.name.split('-') == ['web', '1'] && ['a', 'b'].join('/') == 'a/b'", True),
    ("self.name.replace('-', '_') == 'web_1' && ' x '.trim() == 'x'", True),
    (
        "self.name.indexOf('-') == 3 && self.name.substring(4) == '1' "
        "&& self.name.charAt(0) == 'w'",
        True,
    ),
    ("[1, 2, 3].isSorted() && [3, 1].sum() == 4 && [3, 1].min() == 1 && [3, 1].max() == 3", True),
    ("self.name.find('[0-9]+') == '1' && 'a1b22'.findAll('[0-9]+') == ['1', '22']", True),
    ("self.timeout > duration('1m') && self.timeout < duration('1h')", True),
    ("self.since < timestamp('2030-01-01T00:00:00Z')", True),
    ("self.port == 8080", True),
    ("self.x__dash__y == 'dashed' && self.__namespace__ == 'ns'", True),
    ("self.free.anything[0] == 1", True),
    ("quantity(self.memory).isGreaterThan(quantity('1000Mi'))", True),
    (
        "quantity(self.cpu).compareTo(quantity('0.5')) == 0 && quantity('1') == quantity('1000m')",
        True,
    ),
    ("quantity('2k').asInteger() == 2000 && !quantity('1.5').isInteger()", True),
    ("isQuantity(self.memory) && !isQuantity('1 Gi') && quantity('-5m').sign() == -1", True),
    ("quantity('1').add(2).sub(quantity('500m')).asApproximateFloat() == 2.5", True),
    ("quantity('1e3').isLessThan(quantity('1E'))", True),
    # The URL library, with the examples of the Kubernetes CEL documentation.
    ("url('https://example.com:80/').getHost() == 'example.com:80'", True),
    ("url('https://example.com/path').getScheme() == 'https'", True),
    (
        "url('https://[::1]:80/').getHostname() == '::1'"
        " && url('https://[::1]:80/').getPort() == '80'",
        True,
    ),
    (
        "url('https://example.com/').getPort() == '' && url('/absolute-path').getScheme() == ''",
        True,
    ),
    ("url('https://example.com/%20x').getEscapedPath() == '/%20x'", True),
    (
        "url('https://example.com/p?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
        True,
    ),
    (
        "isURL('https://example.com/') && isURL('/p') && !isURL('example.com') && !isURL('a b')",
        True,
    ),
    ("url('http://id.example.com').getScheme() in ['https']", False),
    ("self.ports.all(p, p.port < 100)", False),
    ("self.name.matches('^[0-9]+$')", False),
]

LIBRARY_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string"},
    "replicas": {"type": "integer"},
    "ratio": {"type": "number"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "ports": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
        },
    },
    "timeout": {"type": "string", "format": "duration"},
    "since": {"type": "string", "format": "date-time"},
    "port": {"x-kubernetes-int-or-string": True},
    "x-y": {"type": "string"},
    "namespace": {"type": "string"},
    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "memory": {"type": "string"},
    "cpu": {"type": "string"},
}
LIBRARY_SPEC: dict[str, Any] = {
    "name": "web-1",
    "replicas": 3,
    "ratio": 0.25,
    "labels": {"app": "web"},
    "ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}],
    "timeout": "5m",
    "since": "2024-01-01T00:00:00Z",
    "port": 8080,
    "x-y": "dashed",
    "namespace": "ns",
    "free": {"anything": [1, "two"]},
    "memory": "1Gi",
    "cpu": "500m",
}


@pytest.mark.parametrize(("rule", "holds"), LIBRARY)
def test_kubernetes_cel_library_through_celpy(rule: str, holds: bool) -> None:
    schema = _rule_schema({"rule": rule}, LIBRARY_PROPERTIES)
    problems = validate(schema, {"spec": LIBRARY_SPEC})
    assert problems == (
        [] if holds else [Problem("spec", f'Invalid value: "object": failed rule: {rule}')]
    )


@pytest.mark.parametrize(
    ("schema", "value", "rule"),
    [
        ({"type": "number"}, 2, "self == 2.0"),  # a JSON integer in a number field is a double
        ({"type": "integer"}, 2.0, "self == 2"),
        ({"x-kubernetes-int-or-string": True}, "50%", "self == '50%'"),
        ({"type": "string", "format": "byte"}, "aGk=", "self == b'hi'"),
        ({"type": "boolean"}, True, "self == true"),
    ],
)
def test_values_are_converted_by_schema_type(schema: dict[str, Any], value: Any, rule: str) -> None:
    node = {**schema, "x-kubernetes-validations": [{"rule": rule}]}
    root = {"type": "object", "properties": {"v": node}}
    assert validate(root, {"v": value}) == []


def test_root_rules_see_type_meta_and_name_only() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.kind == 'Thing' && self.metadata.name.startsWith('a')"},
            {"rule": "!has(self.metadata.labels)", "message": "labels are invisible to rules"},
        ],
        "properties": {"spec": {"type": "object"}},
    }
    obj = {"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "abc", "labels": {"a": "b"}}}
    assert validate(schema, obj) == []
    problems = validate(schema, {**obj, "metadata": {"name": "zzz"}})
    assert [p.field for p in problems] == ["<nil>"]


def test_type_errors_skip_rules_like_the_apiserver() -> None:
    problems = validate(SCALING, {"spec": {"minReplicas": "four", "maxReplicas": 3}})
    assert [p.field for p in problems] == ["spec.minReplicas", "<nil>"]
    assert problems[1].reason == (
        'Invalid value: "null": some validation rules were not checked because the object was '
        "invalid; correct the existing errors to complete validation"
    )


def test_null_values_are_not_checked_by_rules() -> None:
    schema = _rule_schema({"rule": "false"}, {})
    schema["properties"]["spec"]["nullable"] = True
    assert validate(schema, {"spec": None}) == []


def test_compiled_programs_are_cached_by_rule_text() -> None:
    assert compile_rule("self.a == 1") is compile_rule("self.a == 1")
    assert compile_rule("oldSelf == self").uses_old_self
    assert not compile_rule("self.oldSelfish == 1").uses_old_self


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("plain", "plain"),
        ("x-y", "x__dash__y"),
        ("a.b", "a__dot__b"),
        ("a/b", "a__slash__b"),
        ("a__b", "a__underscores__b"),
        ("namespace", "__namespace__"),
        ("as", "__as__"),
        ("1abc", None),
        ("has space", None),
    ],
)
def test_property_names_are_escaped_like_kubernetes(name: str, escaped: str | None) -> None:
    assert escape_property(name) == escaped


def test_reserved_word_as_a_field_name_does_not_compile() -> None:
    # cel-go rejects ``self.as``; the property is reached as ``self.__as__``.
    assert compile_rule("self.as == 'env'").error is not None
    assert compile_rule("self.__as__ == 'env'").error is None


@pytest.mark.parametrize(
    ("field_path", "expected"),
    [
        (".a", "spec.a"),
        (".a.b", "spec.a.b"),
        (".a[2]", "spec.a[2]"),
        (".labels['app.kubernetes.io/name']", "spec.labels[app.kubernetes.io/name]"),
        ("not a path", "spec"),
    ],
)
def test_field_path_joins_onto_the_rule_node(field_path: str, expected: str) -> None:
    assert join_field_path("spec", field_path) == expected


def test_invalid_quantity_is_a_runtime_error() -> None:
    schema = _rule_schema({"rule": "quantity(self.q).sign() >= 0"}, {"q": {"type": "string"}})
    [problem] = validate(schema, {"spec": {"q": "lots"}})
    assert problem.field == "spec"
    assert problem.reason.startswith('Invalid value: "object": ')
    assert problem.reason.endswith("evaluating rule: quantity(self.q).sign() >= 0")


def test_runtime_type_mismatch_is_reported_not_raised() -> None:
    schema = _rule_schema(
        {"rule": "self.port > 'a'"}, {"port": {"x-kubernetes-int-or-string": True}}
    )
    [problem] = validate(schema, {"spec": {"port": 80}})
    assert problem.field == "spec"
    assert "call arguments did not match a supported operator" in problem.reason


def test_invalid_url_is_a_runtime_error() -> None:
    schema = _rule_schema({"rule": "url(self.u).getScheme() == 'https'"}, {"u": {"type": "string"}})
    [problem] = validate(schema, {"spec": {"u": "not a url"}})
    assert problem.reason.endswith("evaluating rule: url(self.u).getScheme() == 'https'")


# --- values on which every rule held are remembered ------------------------------------------


def _schema(rule: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": rule, "message": "too big"}],
    }


def test_a_remembered_value_is_not_evaluated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _schema("self.n < 10")
    assert validate_rules(schema, {"n": 1}) == []
    calls: list[Any] = []
    monkeypatch.setattr(cel, "_evaluate_rules", lambda *args: calls.append(args))
    assert validate_rules(schema, {"n": 1}) == []
    assert calls == []  # held before: no conversion, no evaluation
    validate_rules(schema, {"n": 2})
    assert len(calls) == 1  # another value is evaluated


def test_failures_and_other_schemas_are_never_taken_from_memory() -> None:
    small, large = _schema("self.n < 10"), _schema("self.n < 100")
    assert validate_rules(large, {"n": 50}) == []
    # The same value under a schema whose rule fails it: evaluated, and refused each time.
    for _ in range(2):
        [problem] = validate_rules(small, {"n": 50})
        assert "too big" in problem.reason
    # A transition rule's verdict depends on the old value: never remembered.
    ratchet = _schema("self.n >= oldSelf.n")
    assert validate_rules(ratchet, {"n": 5}, {"n": 1}) == []
    assert validate_rules(ratchet, {"n": 5}, {"n": 9}) != []


@pytest.mark.parametrize(
    ("rule", "selected"),
    [
        ("has(self.a) && self.b.c == 1", {"a", "b"}),
        ("self.x__dash__y == oldSelf.z", {"x__dash__y", "z"}),
        ("self.a.all(s, s.self == 1)", {"a"}),  # 'self' as a field name is not self
        ("size(self) > 0", None),
        ("self.all(k, k != 'x')", None),
        ("self['a'] == 1", None),
        ("self == oldSelf", None),
        ("[1].all(self, self > 0)", None),
    ],
)
def test_fields_a_rule_selects_from_self(rule: str, selected: set[str] | None) -> None:
    expected = None if selected is None else frozenset(selected)
    assert compile_rule(rule).selected == expected


def _two_fields(rule: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "big-list": {"type": "array"}, "m": {}},
        "additionalProperties": False,
        "x-kubernetes-validations": [{"rule": rule, "message": "too big", **extra}],
    }


def test_rules_see_only_the_fields_they_select(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real = cel.to_cel

    def spy(schema: Any, value: Any, *, root: bool = False) -> Any:
        seen.append(value)
        return real(schema, value, root=root)

    monkeypatch.setattr(cel, "to_cel", spy)
    value = {"n": 1, "big-list": list(range(100)), "m": "x"}
    assert validate_rules(_two_fields("self.n < 10"), value) == []
    assert seen[0] == {"n": 1}  # the first conversion is of self (the rest recurse)
    # A message expression's fields are converted too, and escaped names map back.
    seen.clear()
    schema = _two_fields(
        "self.n < 1", messageExpression="'list of ' + string(size(self.big__dash__list))"
    )
    [problem] = validate_rules(schema, value)
    assert "list of 100" in problem.reason
    assert seen[0] == {"n": 1, "big-list": list(range(100))}
    # A rule reading self whole sees all of it.
    seen.clear()
    assert validate_rules(_two_fields("size(self) == 3"), value) == []
    assert seen[0] == value


@pytest.mark.parametrize(
    ("rule", "value", "holds"),
    [
        ("has(self.n) && self.n > 0", {"m": 1}, False),
        ("!has(self.n)", {"m": 1, "big-list": []}, True),
        ("self.n == 1", {"n": 1, "m": 2}, True),
        ("size(self) == 2", {"n": 1, "m": 2}, True),
    ],
)
def test_projection_keeps_every_verdict(rule: str, value: dict[str, Any], holds: bool) -> None:
    assert (validate_rules(_two_fields(rule), value) == []) is holds


def test_values_differing_outside_the_selected_fields_share_a_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = _two_fields("self.n < 10")
    assert validate_rules(schema, {"n": 1, "m": "a"}) == []
    calls: list[Any] = []
    monkeypatch.setattr(cel, "_evaluate_rules", lambda *args: calls.append(args))
    assert validate_rules(schema, {"n": 1, "m": "b"}) == []
    assert calls == []
