"""The VaultSecret CRD (schema, defaults, CEL rules), its typed model and its extra rules."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mirage_operator.api.vaultsecret import (
    DEFAULT_MOUNTS,
    VaultSecretSpec,
    is_secret_key,
    missing_type_keys,
    rules,
    source_rules,
)
from mirage_operator.schema import apply_defaults, prune, structural_problems, validate

REPO = Path(__file__).resolve().parents[3]
CRD_PATH = REPO / "crds" / "mirage.dev_vaultsecrets.yaml"


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def admit(schema: dict[str, Any], spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What the API server does on create: prune, default, validate. Returns spec, problems."""
    body = {"apiVersion": "mirage.dev/v1alpha1", "kind": "VaultSecret", "spec": spec}
    pruned, unknown = prune(schema, copy.deepcopy(body))
    defaulted = apply_defaults(schema, pruned)
    problems = [f"{path}: unknown" for path in unknown]
    problems += [f"{p.field}: {p.reason}" for p in validate(schema, defaulted)]
    return defaulted["spec"], problems


def _nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


# --- the CRD itself ---------------------------------------------------------------------


def test_crd_is_a_valid_kubernetes_object(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.33.0", strict=True)


def test_schema_is_structural(schema: dict[str, Any]) -> None:
    assert structural_problems(schema) == []


def test_every_field_has_a_description(schema: dict[str, Any]) -> None:
    missing = [path for path, node in _nodes(schema, "") if not node.get("description")]
    assert missing == []


def test_names_columns_and_status(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert spec["group"] == "mirage.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["plural"] == "vaultsecrets"
    assert spec["names"]["shortNames"] == ["vsec"]
    assert spec["names"]["categories"] == ["mirage"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Secret", "Engine", "Path", "Ready", "Refresh", "Last Sync", "Age"]
    assert "Ready" in columns["Ready"]


def test_condition_shape_matches_metav1(schema: dict[str, Any]) -> None:
    conditions = schema["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


@pytest.mark.parametrize("fragment", ["vault", "keys", "templates", "refreshInterval"])
def test_embeddable_parts_are_self_contained(schema: dict[str, Any], fragment: str) -> None:
    # A MirageService copies these sub-schemas: no $ref, nothing pointing outside them.
    assert "$ref" not in yaml.safe_dump(schema["properties"]["spec"]["properties"][fragment])


# --- defaults and CEL rules ---------------------------------------------------------------


def test_defaults(schema: dict[str, Any]) -> None:
    spec, problems = admit(schema, {"vault": {"path": "team-a/app"}})
    assert problems == []
    assert spec["vault"]["engine"] == "kv-v2"
    assert spec["destination"]["type"] == "Opaque"
    assert "refreshInterval" not in spec  # the operator's setting applies (item 17)
    assert "mount" not in spec["vault"]  # engine-dependent: defaulted by the operator


@pytest.mark.parametrize(
    "spec",
    [
        {"vault": {"path": "team-a/app", "version": 3}},
        {"vault": {"engine": "kv-v1", "path": "team-a/app", "mount": "kv"}},
        {"vault": {"engine": "database", "path": "team-a.readonly"}},
        {"vault": {"path": "team-a/app"}, "keys": [{"from": "db password", "to": "password"}]},
        {"vault": {"path": "team-a/app"}, "refreshInterval": "0"},
        {"vault": {"path": "team-a/app"}, "refreshInterval": "1h30m"},
        {
            "vault": {"path": "team-a/app"},
            "rolloutRestartTargets": [
                {"kind": "Deployment", "name": "api"},
                {"kind": "StatefulSet", "name": "api"},
            ],
        },
    ],
)
def test_valid_specs(schema: dict[str, Any], spec: dict[str, Any]) -> None:
    assert admit(schema, spec)[1] == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"vault": {}}, "spec.vault.path"),
        ({"vault": {"path": "/abs"}}, "spec.vault.path"),
        ({"vault": {"path": "a//b"}}, "spec.vault.path"),
        ({"vault": {"path": "a/../b"}}, "spec.vault.path"),
        ({"vault": {"path": "./b"}}, "spec.vault.path"),
        ({"vault": {"path": "a?b"}}, "spec.vault.path"),
        ({"vault": {"path": "a", "engine": "kv-v1", "version": 2}}, "spec.vault.version"),
        ({"vault": {"path": "a", "version": 0}}, "spec.vault.version"),
        ({"vault": {"path": "a/b", "engine": "database"}}, "spec.vault.path"),
        ({"vault": {"path": "a", "engine": "kv-v3"}}, "spec.vault.engine"),
        ({"vault": {"path": "a", "mount": "/secret/"}}, "spec.vault.mount"),
        ({"vault": {"path": "a"}, "keys": [{"from": "a b"}]}, "spec.keys[0].from"),
        ({"vault": {"path": "a"}, "keys": [{"from": "a", "to": "a/b"}]}, "spec.keys[0].to"),
        ({"vault": {"path": "a"}, "keys": [{"from": "a", "to": ".."}]}, "spec.keys[0].to"),
        ({"vault": {"path": "a"}, "refreshInterval": "5d"}, "spec.refreshInterval"),
        ({"vault": {"path": "a"}, "refreshInterval": ""}, "spec.refreshInterval"),
        ({"vault": {"path": "a"}, "destination": {"type": "Other"}}, "spec.destination.type"),
        ({"vault": {"path": "a"}, "destination": {"name": "Bad_Name"}}, "spec.destination.name"),
        (
            {"vault": {"path": "a"}, "rolloutRestartTargets": [{"kind": "Job", "name": "x"}]},
            "spec.rolloutRestartTargets[0].kind",
        ),
        (
            {
                "vault": {"path": "a"},
                "rolloutRestartTargets": [
                    {"kind": "Deployment", "name": "x"},
                    {"kind": "Deployment", "name": "x"},
                ],
            },
            "spec.rolloutRestartTargets[1]",
        ),
    ],
)
def test_invalid_specs(schema: dict[str, Any], spec: dict[str, Any], field: str) -> None:
    problems = admit(schema, spec)[1]
    assert any(p.startswith(field) for p in problems), problems


# --- the typed model ----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["kv-v2", "kv-v1", "database"])
def test_mount_defaults_by_engine(schema: dict[str, Any], engine: str) -> None:
    spec, _ = admit(schema, {"vault": {"engine": engine, "path": "team-a.app"}})
    model = VaultSecretSpec.from_spec(spec)
    assert model.vault.mount == DEFAULT_MOUNTS[engine]
    assert VaultSecretSpec.from_spec({"vault": {**spec["vault"], "mount": "m"}}).vault.mount == "m"


def test_from_spec_reads_every_field(schema: dict[str, Any]) -> None:
    spec, problems = admit(
        schema,
        {
            "vault": {"path": "team-a/app", "version": 4},
            "keys": [{"from": "user", "to": "username"}, {"from": "password"}],
            "templates": {"z": "{{ data.user }}", "a": "x"},
            "destination": {"name": "creds", "labels": {"l": "1"}, "annotations": {"a": "2"}},
            "refreshInterval": "1h30m",
            "rolloutRestartTargets": [{"kind": "Deployment", "name": "api"}],
        },
    )
    assert problems == []
    model = VaultSecretSpec.from_spec(spec)
    assert model.vault.version == 4
    assert [(k.source, k.target) for k in model.keys] == [
        ("user", "username"),
        ("password", "password"),
    ]
    assert list(model.templates) == ["a", "z"]
    assert model.refresh_interval == 5400
    assert model.secret_name("owner") == "creds"
    assert model.destination.labels == {"l": "1"}
    assert model.destination.annotations == {"a": "2"}
    assert [(t.kind, t.name) for t in model.rollout_restart_targets] == [("Deployment", "api")]
    assert model.output_keys() == {"username", "password", "a", "z"}


def test_defaults_for_the_embedded_source() -> None:
    # A MirageService hands over only vault/keys/templates/refreshInterval.
    model = VaultSecretSpec.from_spec(
        {"vault": {"path": "team-a/app"}}, default_refresh_interval=60
    )
    assert model.refresh_interval == 60
    assert model.secret_name("svc-db") == "svc-db"
    assert model.destination.type == "Opaque"
    assert model.copies_all_keys
    assert model.output_keys() is None


def test_refresh_zero_means_off() -> None:
    model = VaultSecretSpec.from_spec({"vault": {"path": "a"}, "refreshInterval": "0"})
    assert model.refresh_interval == 0


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        *[("tls.crt", True), (".dockerconfigjson", True), ("a-b_c", True), (".", False)],
        *[("..", False), ("a b", False), ("a/b", False), ("", False), ("x" * 254, False)],
    ],
)
def test_is_secret_key(name: str, valid: bool) -> None:
    assert is_secret_key(name) is valid


@pytest.mark.parametrize(
    ("secret_type", "keys", "ok"),
    [
        ("Opaque", set(), True),
        ("kubernetes.io/tls", {"tls.crt", "tls.key"}, True),
        ("kubernetes.io/tls", {"tls.crt"}, False),
        ("kubernetes.io/dockerconfigjson", {".dockerconfigjson"}, True),
        ("kubernetes.io/dockerconfigjson", {"config.json"}, False),
        ("kubernetes.io/basic-auth", {"password"}, True),
        ("kubernetes.io/basic-auth", {"token"}, False),
    ],
)
def test_missing_type_keys(secret_type: str, keys: set[str], ok: bool) -> None:
    assert (missing_type_keys(secret_type, keys) is None) is ok


# --- rules the schema cannot express ------------------------------------------------------


def _body(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "vs"}, "spec": {"vault": {"path": "team-a/app"}, **spec}}


def test_valid_spec_has_no_problems() -> None:
    body = _body(
        keys=[{"from": "cert", "to": "tls.crt"}],
        templates={"tls.key": "{{ data.key | b64dec }}"},
        destination={"type": "kubernetes.io/tls"},
    )
    assert rules(body) == []


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"templates": {"cfg": "{{ data.x "}}, "spec.templates[cfg]", "does not compile"),
        ({"templates": {"cfg": "{% for %}"}}, "spec.templates[cfg]", "does not compile"),
        ({"templates": {"a b": "x"}}, "spec.templates[a b]", "not a valid Secret key"),
        (
            {"keys": [{"from": "a", "to": "k"}, {"from": "b", "to": "k"}]},
            "spec.keys[1]",
            "also written by spec.keys[0]",
        ),
        (
            {"keys": [{"from": "a"}], "templates": {"a": "x"}},
            "spec.templates[a]",
            "also written by spec.keys[0]",
        ),
        (
            {
                "keys": [{"from": "cert", "to": "tls.crt"}],
                "destination": {"type": "kubernetes.io/tls"},
            },
            "spec.destination.type",
            "missing tls.key",
        ),
        (
            {"templates": {"x": "1"}, "destination": {"type": "kubernetes.io/dockerconfigjson"}},
            "spec.destination.type",
            ".dockerconfigjson",
        ),
    ],
)
def test_rule_problems(spec: dict[str, Any], field: str, words: str) -> None:
    problems = rules(_body(**spec))
    assert [p.field for p in problems] == [field]
    assert words in problems[0].reason


def test_type_keys_unknowable_when_every_key_is_copied() -> None:
    # Vault decides the keys; the check waits for the data (the builder enforces it).
    assert rules(_body(destination={"type": "kubernetes.io/tls"})) == []


def test_source_rules_use_the_callers_prefix() -> None:
    problems = source_rules(
        {"vault": {"path": "a"}, "templates": {"x": "{{"}, "refreshInterval": "1h"},
        prefix="spec.secrets[2]",
    )
    assert [p.field for p in problems] == ["spec.secrets[2].templates[x]"]


def test_template_problem_does_not_echo_the_template() -> None:
    source = "{{ data.x | nosuchfilter('s3cr3t-literal') }}"
    (problem,) = rules(_body(templates={"x": source}))
    assert "nosuchfilter" in problem.reason
    assert "s3cr3t-literal" not in problem.reason
