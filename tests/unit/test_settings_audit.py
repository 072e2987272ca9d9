"""Every operator setting matters (issue 9 item 17).

A setting can silently stop mattering in two ways: nothing reads it, or a CRD default fills
the spec field it stands in for before the operator sees the spec (as ``refreshInterval:
1h`` did to ``MIRAGE_VAULT_DEFAULT_REFRESH_INTERVAL``).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from mirage_operator.config import Config
from mirage_operator.crds import schema_for
from mirage_operator.errors import ConfigError
from mirage_operator.render.documents import render_document
from tests.unit.factories import service_body

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "mirage_operator"

# Settings that stand in for a spec field the user leaves unset: that field has no schema
# default, or the setting would never apply.
FALLBACKS = {
    "vault_default_refresh_interval": [
        ("VaultSecret", ("spec", "refreshInterval")),
        ("MirageService", ("spec", "secrets", "[]", "refreshInterval")),
    ],
}


def _attributes_read() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def test_every_setting_is_read_outside_its_definition() -> None:
    read = _attributes_read()
    unread = [f.name for f in dataclasses.fields(Config) if f.name not in read]
    assert unread == []


def _node(kind: str, path: tuple[str, ...]) -> dict[str, Any]:
    node = schema_for("mirage.dev/v1alpha1", kind)
    assert node is not None
    for step in path:
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


@pytest.mark.parametrize(
    ("setting", "kind", "path"),
    [(s, kind, path) for s, fields in FALLBACKS.items() for kind, path in fields],
)
def test_no_crd_default_shadows_a_setting(setting: str, kind: str, path: tuple[str, ...]) -> None:
    assert setting in {f.name for f in dataclasses.fields(Config)}
    assert "default" not in _node(kind, path), f"{kind} {'.'.join(path)} shadows {setting}"


EVERYTHING = service_body(
    ingress={"host": "api.example.com"},
    monitoring={
        "slos": [
            {"name": "avail", "objective": 99.9, "sli": {"preset": {"type": "http-availability"}}}
        ]
    },
)


@pytest.mark.parametrize(
    "setting",
    [
        {"ingress_class": "nginx"},
        {"ingress_controller_namespace": "ingress-nginx"},
        {"prometheus_namespace": "observability"},
        {"monitoring_labels": (("example.com/prometheus-shard", "main"),)},
        {"dashboard_labels": (("example.com/grafana-folder", "yes"),)},
    ],
    ids=lambda s: next(iter(s)),
)
def test_each_rendering_setting_changes_what_is_rendered(setting: dict[str, Any]) -> None:
    default = render_document(EVERYTHING, config=Config())
    changed = render_document(EVERYTHING, config=Config(**setting))
    value = next(iter(setting.values()))
    needle = value if isinstance(value, str) else value[0][0]  # a label's key
    assert needle in repr(changed)
    assert needle not in repr(default)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MIRAGE_MONITORING_LABELS", "bad key!=x"),
        ("MIRAGE_MONITORING_LABELS", "release=has space"),
        ("MIRAGE_DASHBOARD_LABELS", "-bad=1"),
        ("MIRAGE_DASHBOARD_LABELS", f"a={'x' * 64}"),
        ("MIRAGE_INGRESS_CLASS", "Traefik_Class"),
        ("MIRAGE_PROMETHEUS_NAMESPACE", "monitoring.svc"),
        ("MIRAGE_INGRESS_CONTROLLER_NAMESPACE", "Traefik"),
        ("MIRAGE_OPERATOR_NAMESPACE", "mirage_system"),
        ("MIRAGE_NAMESPACES", "team-a,Team_B"),
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "oauth2-proxy"),  # no namespace, no port
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "oauth2-proxy/oauth2-proxy"),
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "oauth2-proxy/oauth2-proxy:http"),
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "oauth2-proxy/oauth2-proxy:0"),
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "oauth2-proxy/oauth2-proxy:65536"),
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "Edge/oauth2-proxy:80"),
        ("MIRAGE_OAUTH2_PROXY_SERVICE", "edge/4proxy:80"),  # a Service name starts with a letter
    ],
)
def test_settings_written_into_children_are_checked_at_start(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config.from_env({variable: value})


def test_every_setting_is_changed_by_some_test() -> None:
    # Each setting's effect is asserted where its code is tested; this keeps a new setting
    # from arriving without one.
    tests = Path(__file__).resolve().parents[1]
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in tests.rglob("*.py") if p != Path(__file__)
    )
    untested = [
        f.name
        for f in dataclasses.fields(Config)
        if not re.search(rf'\b{f.name}=|"{f.name}":|{f.metadata["env"]}\b', text)
    ]
    assert untested == []
