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
    """One Event per kind of thing ``converge_children`` did: applied, restored, deleted.

    The Event policy of every kind (docs/adr/0020, amendment of 2026-12-02): the creation of
    an object's children by its first sync (no child known yet) posts no ``Applied`` Event —
    the object's status reports it (``Ready``, its children), and an Event is a write that
    the minimum of issue 10 (one apply per child, one status write per object) has no room
    for. Every later apply (a spec change, a rotation), every restored drift and every
    deletion posts its Event, as do failures and the other warnings."""
    if result.applied and not result.initial:
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
