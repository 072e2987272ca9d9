"""CustomResourceDefinitions of the platform's kinds the operator writes (prometheus-operator,
Istio, Traefik).

The sandbox cannot rely on the real CRDs being around, so it installs minimal ones of its own:
``ServiceMonitor`` and ``PrometheusRule`` in ``monitoring.coreos.com/v1``, Istio's
``PeerAuthentication``, ``AuthorizationPolicy``, ``RequestAuthentication``
(``security.istio.io/v1``) and ``DestinationRule`` (``networking.istio.io/v1``), Traefik's
``Middleware`` (``traefik.io/v1alpha1``), each with a ``spec`` that keeps unknown fields. Tests
that want the real schemas load them with :func:`load_monitoring_crds` from a directory (the
project keeps them outside the repository, under ``../shared/third_party/crds/<group>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GROUP = "monitoring.coreos.com"

# kind -> (plural, short names)
_KINDS = {
    "ServiceMonitor": ("servicemonitors", ["smon"]),
    "PrometheusRule": ("prometheusrules", ["promrule"]),
}

# (group, version, category) -> kind -> (plural, short names), as the projects name them
_PLATFORM_KINDS: dict[tuple[str, str, str], dict[str, tuple[str, list[str]]]] = {
    ("security.istio.io", "v1", "istio-io"): {
        "PeerAuthentication": ("peerauthentications", ["pa"]),
        "AuthorizationPolicy": ("authorizationpolicies", ["ap"]),
        "RequestAuthentication": ("requestauthentications", ["ra"]),
    },
    ("networking.istio.io", "v1", "istio-io"): {
        "DestinationRule": ("destinationrules", ["dr"]),
    },
    ("traefik.io", "v1alpha1", "traefik"): {"Middleware": ("middlewares", [])},
}


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    *,
    group: str = GROUP,
    version: str = "v1",
    category: str = "prometheus-operator",
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": [category],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": f"{kind} (minimal schema of the Mirage sandbox).",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def monitoring_crds() -> list[dict[str, Any]]:
    """Minimal ServiceMonitor and PrometheusRule CRDs (``spec`` preserves unknown fields)."""
    return [_crd(kind, plural, short) for kind, (plural, short) in _KINDS.items()]


def platform_crds() -> list[dict[str, Any]]:
    """Minimal CRDs of every platform kind the operator writes (``spec`` preserves unknown
    fields): prometheus-operator's, Istio's and Traefik's."""
    return monitoring_crds() + [
        _crd(kind, plural, short, group=group, version=version, category=category)
        for (group, version, category), kinds in _PLATFORM_KINDS.items()
        for kind, (plural, short) in kinds.items()
    ]


def load_monitoring_crds(directory: str | Path) -> list[dict[str, Any]]:
    """The real prometheus-operator CRDs (every ``*.yaml`` document) in ``directory``."""
    crds = []
    for path in sorted(Path(directory).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds
