"""What every kind's handlers share: the clock format, Events, owner lookup, sync reports."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, cast

import kopf

from mirage_operator import GROUP
from mirage_operator.k8s.children import SyncResult


def now() -> str:
    """The current time as a metav1.Time string."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def post_event(
    body: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
) -> None:
    """Queue a Kubernetes Event on ``body`` through kopf's event poster."""
    post = kopf.warn if warning else kopf.info
    post(cast(kopf.Body, body), reason=reason, message=message)


def post_sync_events(body: Mapping[str, Any], result: SyncResult) -> None:
    """One Event per kind of thing ``converge_children`` did: applied, restored, deleted."""
    if result.applied:
        post_event(body, "Applied", "applied " + ", ".join(result.applied))
    if result.restored:
        post_event(body, "DriftCorrected", "restored " + ", ".join(result.restored), warning=True)
    if result.deleted:
        post_event(body, "Deleted", "deleted " + ", ".join(result.deleted))


def owner_of(body: Mapping[str, Any], kind: str) -> str | None:
    """Name of the Mirage ``kind`` controlling ``body`` (its controller owner reference)."""
    for ref in body.get("metadata", {}).get("ownerReferences", []) or []:
        if (
            ref.get("kind") == kind
            and ref.get("apiVersion", "").startswith(f"{GROUP}/")
            and ref.get("controller")
        ):
            return str(ref["name"])
    return None
