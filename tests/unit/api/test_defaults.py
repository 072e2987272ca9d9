"""Every default lives once, in the CRD schema (docs/adr/0130).

The typed models default a spec with the CRD's own schema before reading it. Three checks:
changing any default in the CRD changes the model built from a spec that omits the field (so
the model reads it from the CRD, not from a copy); a model built from a minimal spec equals the
one built from the API-server-defaulted spec; and no ``.get(field, literal)`` in ``api/``
restates a CRD default. The defaults a schema cannot hold (ADR 0009, 0012) are stated by the
field's description, which must quote the model's value.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mirage_operator.api import defaults, mirageservice
from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.api.validation import admit
from mirage_operator.api.vaultsecret import VaultSecretSpec
from mirage_operator.crds import load_crds, spec_schema
from tests.conftest import REPO

API_DIR = REPO / "operator" / "mirage_operator" / "api"
PRESET = {"preset": {"type": "http-availability"}}

# Per kind: how to build its model, and a spec that omits every defaulted field but opens each
# optional object that holds defaults (a startup probe, a secret, an SLO, the mesh), so that
# every default of the schema is reachable.
KINDS: dict[str, tuple[Callable[[dict[str, Any]], Any], dict[str, Any]]] = {
    "MirageService": (
        MirageServiceSpec.from_spec,
        {
            "image": "registry.example/api:1.2.3",
            "probes": {"startup": {}},
            "secrets": [{"name": "db", "vault": {"path": "shop/db"}}],
            "monitoring": {"slos": [{"name": "avail", "objective": 99.0, "sli": PRESET}]},
            "mesh": {},
        },
    ),
    "VaultSecret": (VaultSecretSpec.from_spec, {"vault": {"path": "shop/db"}}),
    "ServiceLevelObjective": (
        ServiceLevelObjectiveSpec.from_spec,
        {"service": "api", "objective": 99.0, "sli": PRESET},
    ),
}


def _defaulted_nodes(node: dict[str, Any], path: str = "spec") -> Iterator[tuple[str, Any]]:
    """Every schema node below ``node`` that declares a default, by path."""
    if "default" in node:
        yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _defaulted_nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _defaulted_nodes(node["items"], f"{path}[]")


def _changed(node: dict[str, Any]) -> Any:
    """Another value the field could default to."""
    value = node["default"]
    if "enum" in node:
        return next(v for v in node["enum"] if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):  # spec.ports
        return [{**value[0], "port": value[0]["port"] + 1}]
    if isinstance(value, str) and (match := re.fullmatch(r"([0-9]+)([%d])", value)):
        return f"{int(match[1]) + 1}{match[2]}"
    if isinstance(value, str):
        return value + "x"
    return None  # an object default ({}): its own fields' defaults are checked one by one


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_crd_default_reaches_the_model(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    build, minimal = KINDS[kind]
    baseline_spec, baseline = defaults.defaulted(kind, minimal), build(minimal)
    reached = []
    for path, node in _defaulted_nodes(dict(defaults.spec_schema(kind))):
        changed = _changed(node)
        if changed is None:
            continue
        with monkeypatch.context() as patch:
            patch.setitem(node, "default", changed)
            if defaults.defaulted(kind, minimal) == baseline_spec:
                continue  # not reachable from this spec (e.g. below an unset object)
            reached.append(path)
            assert build(minimal) != baseline, f"{kind} {path}: the model ignores the CRD default"
    # Every default below spec is reachable from the minimal specs above.
    assert len(reached) == sum(
        1 for _, n in _defaulted_nodes(dict(defaults.spec_schema(kind))) if _changed(n) is not None
    )


def _body(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": spec,
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_minimal_spec_reads_as_the_api_server_stores_it(kind: str) -> None:
    build, minimal = KINDS[kind]
    assert build(minimal) == build(admit(_body(kind, minimal))["spec"])


def _crd_defaults_by_field() -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for crd in load_crds():
        for path, node in _defaulted_nodes(spec_schema(crd)):
            found.setdefault(re.split(r"[.\[]", path.replace("[]", ""))[-1], []).append(
                node["default"]
            )
    return found


def restated_defaults(source: str) -> list[str]:
    """``.get("field", literal)`` calls whose literal is a CRD default of a field of that name."""
    crd_defaults = _crd_defaults_by_field()
    found = []
    for call in ast.walk(ast.parse(source)):
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "get"
            and len(call.args) == 2
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[1], ast.Constant)
        ):
            continue
        field, literal = call.args[0].value, call.args[1].value
        if any(literal == d and type(literal) is type(d) for d in crd_defaults.get(field, [])):
            found.append(f"line {call.lineno}: .get({field!r}, {literal!r})")
    return found


def test_the_scan_finds_a_restated_default() -> None:
    assert restated_defaults('spec.get("replicas", 2)\nspec.get("replicas")\n') == [
        "line 1: .get('replicas', 2)"
    ]
    assert restated_defaults('probe.get("path", "/readyz")') == ["line 1: .get('path', '/readyz')"]


@pytest.mark.parametrize("module", sorted(p.name for p in API_DIR.glob("*.py")))
def test_no_crd_default_is_restated_in_api(module: str) -> None:
    assert restated_defaults((API_DIR / module).read_text(encoding="utf-8")) == []


def _description(*path: str) -> str:
    node: dict[str, Any] = dict(defaults.spec_schema("MirageService"))
    for name in path:
        node = node["properties"][name]
    return " ".join(str(node["description"]).split())


@pytest.mark.parametrize(
    ("path", "stated"),
    [
        (("ingress", "path"), f"{mirageservice.INGRESS_PATH} when unset"),
        (("ingress", "tls", "enabled"), f"{mirageservice.INGRESS_TLS}".lower() + " when unset"),
        (("monitoring", "metrics", "interval"), mirageservice.DEFAULT_SCRAPE_INTERVAL),
        (("monitoring", "metrics", "scrapeTimeout"), mirageservice.DEFAULT_SCRAPE_TIMEOUT),
        (
            ("autoscaling", "minReplicas"),
            f"the default of replicas ({defaults.schema_default('MirageService', 'replicas')})",
        ),
    ],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else "",
)
def test_descriptions_state_the_defaults_the_model_holds(
    path: tuple[str, ...], stated: str
) -> None:
    assert stated in _description(*path)


def test_models_do_not_default_fields_the_schema_defaults() -> None:
    # Belt and braces for the scan: the typed models' own source never names these values.
    text = Path(mirageservice.__file__).read_text(encoding="utf-8")
    for literal in ('"/healthz"', '"/readyz"', "10001", '"IfNotPresent"', '"25%"'):
        assert literal not in text
