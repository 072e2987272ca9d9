"""values.yaml is documented key by key, values.schema.json describes and closes every level,
and helm rejects bad values with a message naming the key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import CASES, CHART, Helm, default_values, values_args

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
_KEY = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):")


def values_comments(path: Path) -> dict[str, str]:
    """The comment block right above each key of a YAML file, by dotted path."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = _KEY.match(line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            found[".".join(key for _, key in stack)] = " ".join(pending)
        pending = []
    return found


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` followed (its own keys win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**resolve(target), **{k: v for k, v in node.items() if k != "$ref"}}


def properties(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every declared property of the schema (values keys), depth first, by dotted path."""
    for key, sub in node.get("properties", {}).items():
        sub_path = f"{path}.{key}" if path else key
        yield sub_path, resolve(sub)
        yield from properties(resolve(sub), sub_path)


def object_nodes(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node of type object, anywhere (properties, items, $defs)."""
    if isinstance(node, dict):
        types = node.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            yield where, node
        for key, sub in node.items():
            if key not in ("default", "enum", "const"):
                yield from object_nodes(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for index, sub in enumerate(node):
            yield from object_nodes(sub, f"{where}/{index}")


def lookup(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


VALUE_PATHS = [path for path, _ in properties(SCHEMA)]


def test_schema_declares_what_values_yaml_holds() -> None:
    def leaves(node: Any, path: str = "") -> Iterator[str]:
        yield path
        if isinstance(node, dict) and (path == "" or "properties" in _at(path)):
            for key, sub in node.items():
                yield from leaves(sub, f"{path}.{key}" if path else key)

    def _at(path: str) -> dict[str, Any]:
        return dict(properties(SCHEMA))[path]

    in_values = {p for p in leaves(default_values()) if p}
    assert in_values == set(VALUE_PATHS)


@pytest.mark.parametrize("path", VALUE_PATHS)
def test_every_key_is_commented_described_and_defaulted(path: str) -> None:
    comments = values_comments(CHART / "values.yaml")
    assert comments.get(path), f"values.yaml: no comment above {path}"
    node = dict(properties(SCHEMA))[path]
    assert node.get("description"), f"values.schema.json: {path} has no description"
    assert "default" in node, f"values.schema.json: {path} has no default"
    assert node["default"] == lookup(default_values(), path), f"{path}: default != values.yaml"


def test_every_object_level_is_closed() -> None:
    nodes = list(object_nodes(SCHEMA))
    assert len(nodes) > 20
    for where, node in nodes:
        extra = node.get("additionalProperties")
        if "properties" in node:
            assert extra is False, f"{where}: additionalProperties must be false"
        else:
            # A free-form map (labels, annotations): its values must still be typed.
            assert isinstance(extra, dict) and extra.get("type"), f"{where}: untyped map"


# (--set/--set-json arguments, strings the error must contain: the key's JSON pointer, and
# the offending key for unknown ones)
INVALID = {
    "unknown top-level key": (["--set", "replicas=2"], ["additional properties 'replicas'"]),
    "unknown nested key": (["--set", "vault.adress=x"], ["'/vault'", "'adress'"]),
    "misspelt section": (["--set", "metric.enabled=true"], ["'metric'"]),
    "string for an integer": (["--set", "metrics.port=http"], ["/metrics/port", "integer"]),
    "string for a boolean": (["--set", "crds.install=maybe"], ["/crds/install", "boolean"]),
    "integer for a string": (["--set", "vault.address=8200"], ["/vault/address"]),
    "object for a list": (["--set", "watch.namespaces.a=b"], ["/watch/namespaces", "array"]),
    "negative replicas": (["--set", "replicaCount=-1"], ["/replicaCount"]),
    "shard without namespaces": (["--set", "shards[0].name=a"], ["/shards/0"]),
    "unknown auth mode": (["--set", "vault.auth.mode=token"], ["/vault/auth/mode"]),
    "unknown log level": (["--set", "operator.logLevel=TRACE"], ["/operator/logLevel"]),
    "comma inside a list item": (
        ["--set-json", 'vault.allowedPaths=["a/*,b/*"]'],
        ["/vault/allowedPaths/0"],
    ),
    "day in a Go duration": (
        ["--set", "vault.defaultRefreshInterval=1d"],
        ["/vault/defaultRefreshInterval"],
    ),
    "two CA sources": (
        ["--set", "vault.caCert.configMap=a", "--set", "vault.caCert.secret=b"],
        ["/vault/caCert/secret"],
    ),
    "root user": (["--set", "securityContext.runAsUser=0"], ["/securityContext/runAsUser"]),
    "token shorter than the API minimum": (
        ["--set", "vault.auth.tokenExpiration=60"],
        ["/vault/auth/tokenExpiration"],
    ),
    "invalid namespace name": (
        ["--set", "watch.namespaces[0]=Team_A"],
        ["/watch/namespaces/0"],
    ),
    "unknown toleration field": (
        ["--set-json", 'tolerations=[{"key":"a","operater":"Exists"}]'],
        ["/tolerations/0", "'operater'"],
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_schema_rejects_invalid_values_naming_the_key(helm: Helm, case: str) -> None:
    args, expected = INVALID[case]
    result = helm.template(*args)
    assert result.returncode != 0, f"{case}: accepted"
    assert "values don't meet the specifications of the schema" in result.stderr
    for text in expected:
        assert text in result.stderr, f"{case}: {text!r} not in:\n{result.stderr}"


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_strict_passes(helm: Helm, case: str) -> None:
    result = helm.run("lint", "--strict", str(CHART), *values_args(case))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


def test_helm_lint_strict_rejects_a_bad_values_file(helm: Helm, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vault:\n  auth:\n    mode: tenant\n    moutn: kubernetes\n")
    result = helm.run("lint", "--strict", str(CHART), "-f", str(bad))
    assert result.returncode != 0
    assert "moutn" in result.stdout + result.stderr
