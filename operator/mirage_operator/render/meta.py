"""Metadata every builder shares: standard labels, owner references, object metadata."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mirage_operator.api.k8svalidation import is_valid_label_value

MANAGED_BY = "mirage-operator"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CHECKSUM_ANNOTATION = "mirage.dev/checksum"

Owner = Mapping[str, Any] | None
"""The custom resource a child belongs to (its body), or ``None`` for a preview."""


def selector_labels(*, name: str) -> dict[str, str]:
    """Labels that select a service's pods (immutable once a Deployment exists)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def standard_labels(
    *, name: str, component: str | None = None, version: str | None = None
) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels on every object the operator creates for ``name``."""
    labels = {
        **selector_labels(name=name),
        "app.kubernetes.io/part-of": "mirage",
        MANAGED_BY_LABEL: MANAGED_BY,
    }
    if component:
        labels["app.kubernetes.io/component"] = component
    if version:
        labels["app.kubernetes.io/version"] = version
    return labels


def image_version(image: str) -> str | None:
    """The tag of an image reference, when it is a valid label value (digests are not)."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    return None if is_valid_label_value(tag) else tag


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A controller owner reference to ``owner`` (a custom resource body)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(
    *,
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    owner: Mapping[str, Any] | None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a child object; the owner reference only when the owner has a uid."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner is not None and owner.get("metadata", {}).get("uid"):
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def child(
    api_version: str,
    kind: str,
    service: str,
    namespace: str,
    owner: Owner,
    /,
    *,
    name: str | None = None,
    component: str | None = None,
    annotations: Mapping[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An object of MirageService ``service``: named ``name`` (the service's own name unless
    given), with the standard labels and the owner reference; ``fields`` follow ``metadata``."""
    labels = standard_labels(name=service, component=component)
    metadata = object_meta(
        name=name or service,
        namespace=namespace,
        labels=labels,
        owner=owner,
        annotations=annotations,
    )
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def checksum(parts: Mapping[str, Any]) -> str:
    """A stable SHA-256 over JSON-able ``parts`` (sorted keys), for pod-template annotations."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
