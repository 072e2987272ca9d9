"""Builders of test inputs shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
