"""Builders of test inputs shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mirage_operator.api.mirageservice import MirageServiceSpec

ServiceFactory = Callable[..., MirageServiceSpec]


def service_body(name: str = "api", namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    """A MirageService document with ``spec`` (``image`` defaults to a tagged image)."""
    return {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "metadata": {"name": name, "namespace": namespace, "uid": "uid-1"},
        "spec": {"image": "registry.example/api:1.2.3", **spec},
    }


def write_kubeconfig(path: Path, *, server: str = "http://127.0.0.1:9", token: str = "t") -> Path:
    """A kubeconfig at ``path`` with one context: ``server``, authenticated by ``token``
    (the default server is a closed port: nothing is ever reached)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path
