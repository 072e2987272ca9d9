"""CustomResourceDefinitions of prometheus-operator kinds the operator writes.

The sandbox cannot rely on the real prometheus-operator CRDs being around, so it installs
minimal ones of its own: ``ServiceMonitor`` and ``PrometheusRule`` in
``monitoring.coreos.com/v1`` with a ``spec`` that keeps unknown fields. Tests that want the
real schemas load them with :func:`load_monitoring_crds` from a directory (the project keeps
them outside the repository, under ``../shared/third_party/crds/monitoring.coreos.com``).
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


def _crd(kind: str, plural: str, short_names: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["prometheus-operator"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
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


def load_monitoring_crds(directory: str | Path) -> list[dict[str, Any]]:
    """The real prometheus-operator CRDs (every ``*.yaml`` document) in ``directory``."""
    crds = []
    for path in sorted(Path(directory).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds
