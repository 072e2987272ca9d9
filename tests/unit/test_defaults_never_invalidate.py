"""A schema default never makes a valid spec invalid (issue 9 item 9).

A real API server applies defaults before it evaluates CEL rules, so a default that a
cross-field rule refuses (``scrapeTimeout: 10s`` beside ``interval: 5s``) turns a spec that
omits the field into an invalid one although the user never wrote the value. The property,
checked for every CEL rule of the three CRDs that reads a defaulted field: whenever some
explicit value of that field makes the object valid, omitting the field does too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from mirage_operator.api.validation import problems_of
from mirage_operator.crds import load_crds
from mirage_operator.schema import apply_defaults, validate
from tests.unit.factories import service_body

STRINGS = [
    "0", "1", "5s", "10s", "30s", "1m", "500ms", "2h", "0%", "25%", "100%", "kv-v2", "kv-v1",
    "database", "team/x", "x", "env", "files", "/data", "http-availability", "http-latency",
    "0.3", "1d", "30d",
]  # fmt: skip
INTEGERS = [0, 1, 2, 5, 1000]
PER_FIELD = 6


def _rule_nodes() -> Iterator[Any]:
    def walk(schema: Mapping[str, Any], path: str) -> Iterator[Any]:
        if schema.get("x-kubernetes-validations") and schema.get("properties"):
            yield pytest.param(schema, id=path)
        for name, sub in (schema.get("properties") or {}).items():
            yield from walk(sub, f"{path}.{name}")
        if isinstance(schema.get("items"), Mapping):
            yield from walk(schema["items"], f"{path}[]")
        if isinstance(schema.get("additionalProperties"), Mapping):
            yield from walk(schema["additionalProperties"], f"{path}[*]")

    for crd in load_crds():
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            yield from walk(version["schema"]["openAPIV3Schema"], kind)


def _candidates(schema: Mapping[str, Any]) -> list[Any]:
    """Values valid under ``schema`` alone: its enum, its default, and a small pool."""
    pool: list[Any] = list(schema.get("enum") or [])
    if "default" in schema:
        pool.append(schema["default"])
    if schema.get("x-kubernetes-int-or-string"):
        pool += INTEGERS + STRINGS
    elif schema.get("type") == "string":
        pool += STRINGS
    elif schema.get("type") == "integer":
        pool += INTEGERS
    elif schema.get("type") == "boolean":
        pool += [True, False]
    elif schema.get("type") == "object":
        pool += [{}]
    valid = []
    for value in pool:
        if value not in valid and validate(schema, value) == []:
            valid.append(value)
    return valid[:PER_FIELD]


def _referenced(node: Mapping[str, Any]) -> set[str]:
    rules = " ".join(r["rule"] for r in node["x-kubernetes-validations"])
    return set(re.findall(r"self\.([A-Za-z_][A-Za-z0-9_]*)", rules)) & set(node["properties"])


NODES = list(_rule_nodes())


def test_the_audit_covers_the_defaulted_fields_of_rules() -> None:
    # Guard against a walk that finds nothing: some rules read defaulted fields.
    defaulted = [
        name
        for param in NODES
        for name in _referenced(param.values[0])
        if "default" in param.values[0]["properties"][name]
    ]
    assert defaulted


@pytest.mark.parametrize("node", NODES)
def test_omitting_a_defaulted_field_is_valid_when_some_value_is(node: Mapping[str, Any]) -> None:
    properties = node["properties"]
    fields = _referenced(node) | set(node.get("required", ()))
    choices = {name: _candidates(properties[name]) for name in fields}
    for target in sorted(n for n in _referenced(node) if "default" in properties[n]):
        others = sorted(fields - {target})
        options = [
            ([] if name in node.get("required", ()) else [None]) + choices[name] for name in others
        ]
        for combination in itertools.product(*options):
            base = {k: v for k, v in zip(others, combination, strict=True) if v is not None}
            valid_with = [
                v
                for v in choices[target]
                if validate(node, apply_defaults(node, {**base, target: v})) == []
            ]
            if not valid_with:
                continue
            omitted = apply_defaults(node, dict(base))
            problems = validate(node, omitted)
            assert problems == [], (
                f"{base} without {target} is refused because of its default "
                f"{properties[target]['default']!r}, though {target}: {valid_with[0]!r} is valid: "
                f"{[str(p) for p in problems]}"
            )


# Cross-field rules the operator checks in Python see defaulted specs too.
@pytest.mark.parametrize(
    "spec",
    [
        {"monitoring": {"metrics": {"interval": "5s"}}},
        {"monitoring": {"metrics": {"interval": "500ms"}}},
        {"monitoring": {"metrics": {"scrapeTimeout": "45s"}}},
        {"monitoring": {"metrics": {"scrapeTimeout": "2m"}}},
        {"rollout": {"maxSurge": 0}},
        {"rollout": {"maxSurge": "0%"}},
        {"rollout": {"maxUnavailable": "100%"}},
        {"autoscaling": {"maxReplicas": 1, "targetCPUUtilization": 50}},
        {"secrets": [{"name": "a", "vault": {"path": "x", "version": 3}}]},
        {"secrets": [{"name": "a", "vault": {"path": "x"}, "expose": {"mountPath": "/s"}}]},
        # An alert that can never fire at 80% is omitted, not refused.
        {
            "monitoring": {
                "slos": [
                    {"name": "a", "objective": 80, "sli": {"preset": {"type": "http-availability"}}}
                ]
            }
        },
    ],
    ids=repr,
)
def test_specs_that_omit_a_defaulted_field_are_accepted(spec: dict[str, Any]) -> None:
    _, problems = problems_of(service_body(**spec))
    assert problems == []


def test_derived_values_respect_the_rules() -> None:
    from mirage_operator.api.mirageservice import MirageServiceSpec, scrape_settings

    assert scrape_settings({"interval": "5s"}) == ("5s", "5s")
    assert scrape_settings({"scrapeTimeout": "45s"}) == ("45s", "45s")
    assert scrape_settings({}) == ("30s", "10s")
    assert scrape_settings({"interval": "1m", "scrapeTimeout": "20s"}) == ("1m", "20s")
    surge_zero = MirageServiceSpec.from_spec({"image": "x", "rollout": {"maxSurge": 0}})
    assert (surge_zero.max_surge, surge_zero.max_unavailable) == (0, 1)
    default = MirageServiceSpec.from_spec({"image": "x", "rollout": {"maxSurge": "25%"}})
    assert default.max_unavailable == 0
    small = MirageServiceSpec.from_spec(
        {"image": "x", "autoscaling": {"maxReplicas": 1, "targetCPUUtilization": 5}}
    )
    assert small.autoscaling is not None and small.autoscaling.min_replicas == 1
