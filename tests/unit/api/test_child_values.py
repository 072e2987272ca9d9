"""``mirage validate`` refuses, naming the field, every value the API server would refuse in a
child object, and what the operator derives itself is always valid (issue 9 items 6 and 10).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from mirage_operator.api import k8svalidation as kv
from mirage_operator.api.validation import problems_of
from mirage_operator.config import Config
from mirage_operator.crds import schema_for
from mirage_operator.render.documents import render_document
from tests.conftest import REPO
from tests.schemas import third_party_schema
from tests.unit.factories import service_body

API = "mirage.dev/v1alpha1"
SLO = {"name": "avail", "objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}


def vault_secret(name: str = "creds", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "VaultSecret",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"vault": {"path": "shop/app"}, **spec},
    }


def slo_body(name: str = "api-avail", **spec: Any) -> dict[str, Any]:
    fields = {k: v for k, v in SLO.items() if k != "name"}
    return {
        "apiVersion": API,
        "kind": "ServiceLevelObjective",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {**fields, "service": "api", **spec},
    }


def _refused(document: Mapping[str, Any], field: str) -> list[str]:
    _, problems = problems_of(document)
    assert problems, f"accepted, expected a problem at {field}"
    named = [str(p) for p in problems if p.field.startswith(field)]
    assert named, [str(p) for p in problems]
    return named


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # MirageService names name the Service: DNS-1035 labels.
    ("dotted name", service_body(name="a.b"), "metadata.name"),
    ("name starting with a digit", service_body(name="1api"), "metadata.name"),
    ("name with capitals", service_body(name="Api"), "metadata.name"),
    ("name ending in a newline", service_body(name="hello\n"), "metadata.name"),
    ("64-character name", service_body(name="a" * 64), "metadata.name"),
    ("VaultSecret name", vault_secret(name="Bad_Name"), "metadata.name"),
    ("SLO name ending in a newline", slo_body(name="x\n"), "metadata.name"),
    # Rolling update bounds (ValidateRollingUpdateDeployment).
    ("negative maxSurge", service_body(rollout={"maxSurge": -5}), "spec.rollout"),
    ("negative maxUnavailable", service_body(rollout={"maxUnavailable": -1}), "spec.rollout"),
    ("150% unavailable", service_body(rollout={"maxUnavailable": "150%"}), "spec.rollout"),
    ("101% unavailable", service_body(rollout={"maxUnavailable": "101%"}), "spec.rollout"),
    ("both 0", service_body(rollout={"maxSurge": 0, "maxUnavailable": 0}), "spec.rollout"),
    ("both 0%", service_body(rollout={"maxSurge": "0%", "maxUnavailable": "0%"}), "spec.rollout"),
    ("string without %", service_body(rollout={"maxSurge": "5"}), "spec.rollout"),
    ("percent and newline", service_body(rollout={"maxSurge": "5%\n"}), "spec.rollout"),
    ("PDB over 100%", service_body(disruption={"minAvailable": "120%"}), "spec.disruption"),
    ("PDB negative", service_body(disruption={"maxUnavailable": -1}), "spec.disruption"),
    # Label and annotation keys and values.
    (
        "ingress annotation key with a space",
        service_body(ingress={"host": "a.example.com", "annotations": {"bad key!": "x"}}),
        "spec.ingress.annotations",
    ),
    (
        "ingress annotation key starting with -",
        service_body(ingress={"host": "a.example.com", "annotations": {"-bad": "x"}}),
        "spec.ingress.annotations",
    ),
    (
        "ingress annotation key with two slashes",
        service_body(ingress={"host": "a.example.com", "annotations": {"a/b/c": "x"}}),
        "spec.ingress.annotations",
    ),
    (
        "podLabels key",
        service_body(networkPolicy={"allowFrom": [{"podLabels": {"bad key!": "x"}}]}),
        "spec.networkPolicy.allowFrom[0].podLabels",
    ),
    (
        "podLabels value with a space",
        service_body(networkPolicy={"allowFrom": [{"podLabels": {"app": "has space"}}]}),
        "spec.networkPolicy.allowFrom[0].podLabels",
    ),
    (
        "podLabels value of 64 characters",
        service_body(networkPolicy={"allowFrom": [{"podLabels": {"app": "a" * 64}}]}),
        "spec.networkPolicy.allowFrom[0].podLabels",
    ),
    (
        "allowFrom service that cannot be a MirageService",
        service_body(networkPolicy={"allowFrom": [{"service": "a.b"}]}),
        "spec.networkPolicy.allowFrom[0].service",
    ),
    (
        "allowFrom namespace",
        service_body(networkPolicy={"allowFrom": [{"namespace": "Team_A"}]}),
        "spec.networkPolicy.allowFrom[0].namespace",
    ),
    (
        "destination label value with a space",
        vault_secret(destination={"labels": {"team": "a b"}}),
        "spec.destination.labels",
    ),
    (
        "destination label key",
        vault_secret(destination={"labels": {"-bad": "x"}}),
        "spec.destination.labels",
    ),
    (
        "destination annotation key",
        vault_secret(destination={"annotations": {"bad key!": "x"}}),
        "spec.destination.annotations",
    ),
    # ConfigMap and Secret keys.
    ("config key with a slash", service_body(config={"data": {"a/b": "x"}}), "spec.config.data"),
    ("config key ..", service_body(config={"data": {"..": "x"}}), "spec.config.data"),
    (
        "config key starting with ..",
        service_body(config={"data": {"..a": "x"}}),
        "spec.config.data",
    ),
    ("config key with a newline", service_body(config={"data": {"a\n": "x"}}), "spec.config.data"),
    ("template key ..", vault_secret(templates={"..": "x"}), "spec.templates"),
    ("template key with a slash", vault_secret(templates={"a/b": "x"}), "spec.templates"),
    ("key rename to ..x", vault_secret(keys=[{"from": "a", "to": "..x"}]), "spec.keys[0]"),
    # Names of other objects the children refer to.
    (
        "TLS secretName",
        service_body(ingress={"host": "a.example.com", "tls": {"secretName": "Bad_Name"}}),
        "spec.ingress.tls.secretName",
    ),
    (
        "ingress path with //",
        service_body(ingress={"host": "a.example.com", "path": "/a//b"}),
        "spec.ingress.path",
    ),
    (
        "ingress path ending in /..",
        service_body(ingress={"host": "a.example.com", "path": "/a/.."}),
        "spec.ingress.path",
    ),
    (
        "ingress host too long",
        service_body(ingress={"host": ("a" * 60 + ".") * 5 + "com"}),
        "spec.ingress.host",
    ),
    # Ports and environment variables.
    ("port name without a letter", service_body(ports=[{"name": "80", "port": 80}]), "spec.ports"),
    ("port name with --", service_body(ports=[{"name": "a--b", "port": 80}]), "spec.ports"),
    ("port name of 16", service_body(ports=[{"name": "a" * 16, "port": 80}]), "spec.ports"),
    (
        "appProtocol",
        service_body(ports=[{"name": "h", "port": 80, "appProtocol": "bad proto"}]),
        "spec.ports[0].appProtocol",
    ),
    ("env name ..", service_body(env=[{"name": "..", "value": "x"}]), "spec.env[0].name"),
    (
        "env name starting with a digit",
        service_body(env=[{"name": "1A", "value": "x"}]),
        "spec.env",
    ),
    (
        "exposed env name",
        service_body(
            secrets=[
                {
                    "name": "db",
                    "vault": {"path": "shop/db"},
                    "expose": {"env": [{"key": "a", "name": ".."}]},
                }
            ]
        ),
        "spec.secrets[0].expose.env[0].name",
    ),
    (
        "ingress host that is an IP address",
        service_body(ingress={"host": "10.0.0.1"}),
        "spec.ingress.host",
    ),
    (
        "config mounted over /tmp",
        service_body(config={"data": {"a": "b"}, "mountPath": "/tmp"}),
        "spec.config.mountPath",
    ),
    (
        "config data over 1 MiB",
        service_body(config={"data": {"a": "x" * (1 << 19), "b": "y" * (1 << 19)}}),
        "spec.config.data",
    ),
    (
        "relabel action prometheus-operator does not know",
        service_body(monitoring={"metrics": {"relabelings": [{"action": "rename"}]}}),
        "spec.monitoring.metrics.relabelings[0].action",
    ),
    (
        "relabel field prometheus-operator does not know",
        service_body(monitoring={"metrics": {"relabelings": [{"target": "x"}]}}),
        "spec.monitoring.metrics.relabelings[0].target",
    ),
    (
        "negative relabel modulus",
        service_body(monitoring={"metrics": {"relabelings": [{"modulus": -1}]}}),
        "spec.monitoring.metrics.relabelings[0].modulus",
    ),
    (
        "secret key reference that is not a Secret key",
        service_body(
            secrets=[
                {
                    "name": "db",
                    "vault": {"path": "shop/db"},
                    "expose": {"env": [{"key": "a/b", "name": "A"}]},
                }
            ]
        ),
        "spec.secrets[0].expose.env[0].key",
    ),
    (
        "cpu request over its limit",
        service_body(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}),
        "spec.resources.requests",
    ),
    (
        "memory request over its limit",
        service_body(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}),
        "spec.resources.requests",
    ),
    # Values ending in a newline anywhere a pattern applies.
    ("SLO window with a newline", slo_body(window="30d\n"), "spec.window"),
    (
        "embedded SLO window with a newline",
        service_body(monitoring={"slos": [{**SLO, "window": "30d\n"}]}),
        "spec.monitoring.slos[0].window",
    ),
    (
        "refreshInterval with a newline",
        vault_secret(refreshInterval="1h\n"),
        "spec.refreshInterval",
    ),
    ("image with a newline", service_body(image="registry.example/api:1\n"), "spec.image"),
    # Two children of one kind with one name (item 6, within one resource).
    (
        "SLO named custom beside custom alerts",
        service_body(
            monitoring={
                "slos": [{**SLO, "name": "custom"}],
                "alerts": [{"alert": "Down", "expr": "up == 0"}],
            }
        ),
        "spec.monitoring",
    ),
]


@pytest.mark.parametrize(
    ("document", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_refused_naming_the_field(document: dict[str, Any], field: str) -> None:
    _refused(document, field)


VALID: list[tuple[str, dict[str, Any]]] = [
    ("63-character name", service_body(name="a" * 63)),
    ("maxSurge 0 alone", service_body(rollout={"maxSurge": 0})),
    ("maxUnavailable 100%", service_body(rollout={"maxUnavailable": "100%", "maxSurge": 0})),
    (
        "qualified annotation keys",
        service_body(
            ingress={"host": "a.example.com", "annotations": {"Example.COM/Key_1": "any value\n"}}
        ),
    ),
    ("label values", service_body(networkPolicy={"allowFrom": [{"podLabels": {"a.b/c": ""}}]})),
    ("config keys", service_body(config={"data": {".env": "x", "a_b-c.d": "y"}})),
    (
        "port names",
        service_body(ports=[{"name": "h2c-1", "port": 80, "appProtocol": "kubernetes.io/h2c"}]),
    ),
    (
        "requests equal to limits in other units",
        service_body(
            resources={
                "requests": {"cpu": 1, "memory": "512Mi"},
                "limits": {"cpu": "1000m", "memory": "0.5Gi"},
            }
        ),
    ),
    ("SLO custom without alerts", service_body(monitoring={"slos": [{**SLO, "name": "custom"}]})),
    ("long standalone SLO name", slo_body(name="a" * 253)),
    ("long VaultSecret name", vault_secret(name="a." * 126 + "a")),
]


@pytest.mark.parametrize("document", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_accepted(document: dict[str, Any]) -> None:
    _, problems = problems_of(document)
    assert problems == []


# --- every pattern-checked string refuses a trailing newline ---------------------------------


def _leaves(schema: Mapping[str, Any], value: Any, path: tuple[Any, ...]) -> Iterator[Any]:
    """Paths of string leaves of ``value`` whose schema has a pattern or an enum."""
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, additional if isinstance(additional, Mapping) else None)
            if sub is not None:
                yield from _leaves(sub, item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(schema.get("items", {}), item, (*path, index))
    elif isinstance(value, str) and (
        schema.get("enum") or (schema.get("pattern") and schema["pattern"] != "^/")
    ):
        yield path


EXAMPLE_DOCUMENTS = [
    pytest.param(doc, id=f"{path.name}[{i}]")
    for path in sorted((REPO / "examples").glob("*.yaml"))
    for i, doc in enumerate(__import__("yaml").safe_load_all(path.read_text()))
    if doc and str(doc.get("apiVersion", "")).startswith("mirage.dev/")
]


@pytest.mark.parametrize("document", EXAMPLE_DOCUMENTS)
def test_every_patterned_value_refuses_a_trailing_newline(document: dict[str, Any]) -> None:
    schema = schema_for(API, document["kind"])
    assert schema is not None
    paths = list(_leaves(schema, document, ()))
    assert paths, "the example sets no pattern-checked field"
    for path in paths:
        broken = copy.deepcopy(document)
        node = broken
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] += "\n"
        _, problems = problems_of(broken)
        assert problems, f"{'.'.join(map(str, path))} accepted a trailing newline"


# --- what the operator derives is always valid -----------------------------------------------

LONG = "a" * 63
LONGEST_DERIVED = [
    service_body(
        name=LONG,
        config={"data": {"k": "v"}},
        secrets=[{"name": "s" * 40, "vault": {"path": "shop/x"}}],
        monitoring={
            "slos": [{**SLO, "name": "o" * 40}],
            "alerts": [{"alert": "Down", "expr": "up == 0"}],
        },
        ingress={"host": "a.example.com"},
        image="registry.example/api:" + "v" * 128,
    ),
    slo_body(name="x" * 253, service=LONG),
    slo_body(name="a." * 126 + "a"),
    vault_secret(name="v" * 253),
]

NAME_RULE = {"Service": "dns1035-label", "Namespace": "dns1123-label"}


@pytest.mark.parametrize("document", LONGEST_DERIVED, ids=lambda d: d["kind"])
def test_derived_names_labels_and_keys_are_valid(document: dict[str, Any]) -> None:
    rendered = render_document(document, config=Config())
    assert rendered
    for obj in rendered:
        meta = obj["metadata"]
        where = f"{obj['kind']}/{meta['name']}"
        rule = NAME_RULE.get(obj["kind"], "dns1123-subdomain")
        assert kv.NAME_RULES[rule](meta["name"]) == [], where
        assert kv.label_problems(meta.get("labels", {}), field=where) == []
        assert kv.annotation_problems(meta.get("annotations", {}), field=where) == []
        if obj["kind"] in ("ConfigMap", "Secret"):
            for key in obj.get("data", {}) or obj.get("stringData", {}):
                assert kv.is_config_map_key(key) == [], (where, key)
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for volume in pod.get("volumes", []):
            assert kv.is_dns1123_label(volume["name"]) == [], (where, volume["name"])
        tls = obj.get("spec", {}).get("tls", [])
        for entry in tls if isinstance(tls, list) else []:
            assert kv.is_dns1123_subdomain(entry["secretName"]) == [], where


def test_long_slo_labels_are_shortened_deterministically() -> None:
    one = render_document(slo_body(name="x" * 253), config=Config())
    two = render_document(slo_body(name="x" * 253), config=Config())
    other = render_document(slo_body(name="x" * 252 + "y"), config=Config())
    labels = [doc[0]["metadata"]["labels"]["mirage.dev/slo"] for doc in (one, two, other)]
    assert labels[0] == labels[1] != labels[2]
    assert all(len(label) == 63 for label in labels)


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, Mapping):
        return {
            k: _without_docs(v) for k, v in schema.items() if k not in ("description", "default")
        }
    return schema


def test_relabelings_follow_prometheus_operator_s_schema() -> None:
    ours = schema_for(API, "MirageService")
    assert ours is not None
    metrics = ours["properties"]["spec"]["properties"]["monitoring"]["properties"]["metrics"]
    endpoint = third_party_schema("servicemonitors")["properties"]["spec"]["properties"]
    upstream = endpoint["endpoints"]["items"]["properties"]["relabelings"]["items"]
    assert _without_docs(metrics["properties"]["relabelings"]["items"]["properties"]) == (
        _without_docs(upstream["properties"])
    )
