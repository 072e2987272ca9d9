"""Bring a set of child objects to their desired state, writing only what differs.

Each desired object carries the hash of its own intent in an annotation. A child is applied
(server-side, under the operator's field manager) only when it is missing, when its intent
changed (the hash differs, which also covers fields we stopped setting), or when someone else
changed a field we set (drift). With nothing changed, a reconcile reads and writes nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from mirage_operator import metrics
from mirage_operator.errors import ChildNameConflictError, ChildOwnedElsewhere, Problem
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient
from mirage_operator.k8s.ownership import conflicting_owner, foreign_owner
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL

INTENT_ANNOTATION = "mirage.dev/intent-hash"


def with_intent_hash(desired: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``desired`` annotated with the SHA-256 of its canonical JSON."""
    digest = hashlib.sha256(
        json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    body = json.loads(json.dumps(desired))
    body["metadata"].setdefault("annotations", {})[INTENT_ANNOTATION] = digest
    return dict(body)


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10**3), "M": Decimal(10**6),
    "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}  # fmt: skip


def _quantity(value: Any) -> Decimal | None:
    """A resource quantity's value; the API server rewrites quantities into canonical form."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match or match.group(2) not in _SUFFIX:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        return None


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def is_subset(desired: Any, live: Any) -> bool:
    """Whether every field set in ``desired`` has the same value in ``live``.

    Fields the server adds (defaults, status) do not count; an empty value we set matches a
    field the server omits; quantities compare by value (``1000m`` equals ``1``).
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(
            (key in live and is_subset(value, live[key])) or (key not in live and _empty(value))
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if desired and all(isinstance(d, Mapping) and "name" in d for d in desired):
            # Lists keyed by name (containers, env, ports, volumes): others may add items
            # (an injected sidecar) without that being drift of ours.
            by_name = {v.get("name"): v for v in live if isinstance(v, Mapping)}
            return all(d["name"] in by_name and is_subset(d, by_name[d["name"]]) for d in desired)
        return len(desired) == len(live) and all(
            is_subset(d, v) for d, v in zip(desired, live, strict=True)
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live  # True == 1 in Python, not in JSON
    if desired == live:
        return True
    left, right = _quantity(desired), _quantity(live)
    return left is not None and left == right


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """Whether ``desired`` (with its intent hash) must be applied over ``live``."""
    if live is None or live.get("metadata", {}).get("deletionTimestamp"):
        return True
    want = desired["metadata"]["annotations"][INTENT_ANNOTATION]
    if live.get("metadata", {}).get("annotations", {}).get(INTENT_ANNOTATION) != want:
        return True
    return not is_subset(desired, live)


@dataclass
class SyncResult:
    """What a sync did, and the live state of every desired child afterwards."""

    applied: list[str] = field(default_factory=list)
    """``Kind/name`` of each child written."""
    restored: list[str] = field(default_factory=list)
    """The subset of ``applied`` that someone else had changed or deleted."""
    deleted: list[str] = field(default_factory=list)
    """``Kind/name`` of each child removed because it is no longer desired."""
    live: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """``(kind, name)`` → the live object."""


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


Observed = dict[tuple[str, str], dict[str, Any]]
"""``(kind, name)`` → live object, for every child an owner currently has."""


async def observe_children(
    kube: KubeClient, *, owner: Mapping[str, Any], kinds: Iterable[tuple[str, str]]
) -> Observed:
    """Every live object of ``kinds`` that ``owner`` owns (one list call per kind)."""
    namespace = owner["metadata"]["namespace"]
    owner_uid = owner["metadata"]["uid"]
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

    async def owned(api_version: str, kind: str) -> list[dict[str, Any]]:
        items = await kube.list(
            resources.for_kind(api_version, kind), namespace=namespace, label_selector=selector
        )
        return [
            item
            for item in items
            if any(
                ref.get("uid") == owner_uid for ref in item["metadata"].get("ownerReferences", [])
            )
        ]

    listings = await asyncio.gather(*(owned(api_version, kind) for api_version, kind in kinds))
    return {_key(item): item for items in listings for item in items}


async def converge_children(
    kube: KubeClient,
    *,
    owner: Mapping[str, Any],
    desired: Sequence[Mapping[str, Any]],
    observed: Observed,
    field_manager: str,
    known: Iterable[tuple[str, str]] = (),
    keep: Iterable[tuple[str, str]] = (),
) -> SyncResult:
    """Apply what differs in ``desired``; delete observed children that are not desired.

    A desired child whose name is taken by an object ``owner`` does not control is skipped
    (the others are converged) and reported by :class:`ChildOwnedElsewhere` at the end.

    ``known`` names the ``(kind, name)`` children that existed after the previous sync, so
    that one found missing or changed counts as restored drift. ``keep`` names children to
    leave alone although not desired this round (a Deployment held back until its secrets
    are synced). A child that another owner controls is not written:
    :class:`ChildNameConflictError` names it once the others are converged.
    """
    namespace = owner["metadata"]["namespace"]
    result = SyncResult()
    wanted = {_key(d): with_intent_hash(d) for d in desired}
    known_keys = set(known)
    foreigners: list[str] = []
    conflicts: list[Problem] = []

    for key, body in wanted.items():
        resource = resources.for_kind(body["apiVersion"], body["kind"])
        live = observed.get(key)
        if live is None:
            # Not owned (yet): an object of this name someone else made is never taken over.
            live = await kube.get(resource, namespace=namespace, name=key[1])
            other = conflicting_owner(live, owner)
            if other is not None:
                conflicts.append(
                    Problem("metadata.name", f"{key[0]} {key[1]} is controlled by {other}")
                )
                continue
            foreign = foreign_owner(live, owner) if live is not None else None
            if foreign is not None:
                foreigners.append(foreign)
                continue
        if needs_apply(body, live):
            drifted = key in known_keys and (
                live is None
                or live["metadata"].get("annotations", {}).get(INTENT_ANNOTATION)
                == body["metadata"]["annotations"][INTENT_ANNOTATION]
            )
            applied = await kube.apply(resource, body, field_manager=field_manager)
            result.live[key] = applied
            name = f"{key[0]}/{key[1]}"
            result.applied.append(name)
            metrics.CHILDREN_APPLIED.labels(kind=key[0]).inc()
            if drifted:
                result.restored.append(name)
                metrics.DRIFT_CORRECTIONS.labels(kind=key[0]).inc()
        elif live is not None:
            result.live[key] = live

    spared = set(wanted) | set(keep)
    for key, item in observed.items():
        if key in spared or item["metadata"].get("deletionTimestamp"):
            continue
        await kube.delete(
            resources.for_kind(item["apiVersion"], item["kind"]),
            namespace=namespace,
            name=key[1],
            uid=item["metadata"]["uid"],
        )
        result.deleted.append(f"{key[0]}/{key[1]}")
        metrics.CHILDREN_DELETED.labels(kind=key[0]).inc()
    if conflicts:
        raise ChildNameConflictError(conflicts)
    if foreigners:
        raise ChildOwnedElsewhere(
            "; ".join(foreigners) + ": not taken over; delete or rename it", delay=60.0
        )
    return result
