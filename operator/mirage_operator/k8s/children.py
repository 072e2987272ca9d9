"""Bring a set of child objects to their desired state, writing only what differs.

Each desired object carries the hash of its own intent in an annotation. A child is applied
(server-side, under the operator's field manager) only when it is missing, when its intent
changed (the hash differs, which also covers fields we stopped setting), or when someone else
changed a field we set (drift). The live children come from :class:`ChildIndex`, fed by the
operator's watches and by the answers to its own applies: a reconcile makes no read call, and
with nothing changed it makes no call at all (docs/adr/0020). A child whose name an object the
watches cannot see may hold (a Secret: only Mirage's are watched) is created with a POST, which
the API server refuses instead of taking that object over (docs/adr/0126).
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mirage_operator import metrics
from mirage_operator.errors import (
    ChildNameConflictError,
    ChildOwnedElsewhere,
    KubernetesAPIError,
    Problem,
)
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient
from mirage_operator.k8s.handover import HANDED_OVER
from mirage_operator.k8s.ownership import conflicting_owner, controller_of, foreign_owner
from mirage_operator.quantity import QuantityError, parse_quantity
from mirage_operator.render.podsecurity import merge_patch

INTENT_ANNOTATION = "mirage.dev/intent-hash"


def with_intent_hash(desired: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``desired`` annotated with the SHA-256 of its canonical JSON (the copy is
    read back from that JSON: one encoding for both)."""
    canonical = json.dumps(desired, sort_keys=True, separators=(",", ":"))
    body: dict[str, Any] = json.loads(canonical)
    body["metadata"].setdefault("annotations", {})[INTENT_ANNOTATION] = hashlib.sha256(
        canonical.encode()
    ).hexdigest()
    return body


def _quantity(value: Any) -> Decimal | None:
    """A resource quantity's value; the API server rewrites quantities into canonical form."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    try:
        return parse_quantity(value)
    except QuantityError:
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


SEALED_KINDS = frozenset(
    {
        "NetworkPolicy",
        "PeerAuthentication",
        "AuthorizationPolicy",
        "RequestAuthentication",
        "DestinationRule",
        "Middleware",
    }
)
"""Kinds whose whole ``spec`` is the operator's: a field someone adds is drift too (one more
port-level mTLS exception, a ``paths`` that narrows a DENY rule, ``insecureSkipVerify``),
not only a field of ours changed. Their specs get no server-side defaults (the builders
write NetworkPolicy's ``protocol`` and ``policyTypes``; the Istio and Traefik CRDs have no
defaults), so the live spec equals the desired one at rest."""


def _is_enforcement_annotation(key: str) -> bool:
    """Istio's annotations on a policy change whether it is enforced (``istio.io/dry-run``
    only logs what it would deny): on a sealed child only the operator may set them."""
    domain = key.partition("/")[0] if "/" in key else ""
    return domain == "istio.io" or domain.endswith(".istio.io")


def sealing_patch(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any]:
    """The merge patch removing what others added to a sealed child (``{}``: nothing): any
    field of ``spec`` the operator does not set, and Istio's annotations."""
    if live is None or desired["kind"] not in SEALED_KINDS:
        return {}
    patch: dict[str, Any] = {}
    if not is_subset(live.get("spec", {}), desired.get("spec", {})):
        patch["spec"] = merge_patch(live.get("spec", {}), desired.get("spec", {}))
    ours = desired["metadata"].get("annotations") or {}
    added = {
        key: None
        for key in (live.get("metadata", {}).get("annotations") or {})
        if _is_enforcement_annotation(key) and key not in ours
    }
    if added:
        patch["metadata"] = {"annotations": added}
    return patch


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
    failed: dict[str, KubernetesAPIError] = field(default_factory=dict)
    """``Kind/name`` → why the API server refused to write it (the other children were
    still converged)."""
    initial: bool = False
    """No child was known before this sync (``known`` was empty): the owner's first, whose
    applies create its children."""
    taken: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, name)`` of each child to create whose name an object the index does not hold
    turned out to have (the create answered 409 AlreadyExists): not written, and nothing was
    deleted, so that the caller can read that object and decide."""

    def raise_failure(self) -> None:
        """Raise the first failure (a permanent one before transient ones), if any."""
        if self.failed:
            errors = sorted(self.failed.values(), key=lambda e: not e.permanent)
            raise errors[0]


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


Observed = dict[tuple[str, str], dict[str, Any]]
"""``(kind, name)`` → live object, for every child an owner currently has."""

STATUS_KINDS = frozenset({"Deployment", "VaultSecret", "ServiceLevelObjective"})
"""Children whose status an owner reads (rollout, Ready): a change of their status may change
the owner's; any other child's status is nobody's business here."""

UNCACHED_FIELDS: Mapping[str, frozenset[str]] = {"Secret": frozenset({"data", "stringData"})}
"""Fields the index never keeps, by kind: a Secret's values stay out of the operator's
long-lived memory (its reconcile reads the one Secret it writes when it needs the data)."""


def _name_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (its owner reference with ``controller: true``)."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


_UNPACKED = ("managedFields", "resourceVersion")


def _packed(obj: Mapping[str, Any]) -> bytes:
    """What the index keeps of ``obj``: its JSON, compressed, without what no reconcile reads
    and without its resourceVersion (kept beside it, so that two versions that differ in
    nothing else pack alike). managedFields is most of an object's size; only the apply entries
    of a kind with a field to hand over are read (k8s.handover). A status is read only of the
    kinds in ``STATUS_KINDS``; a Secret's data is never kept (``UNCACHED_FIELDS``). Compressed
    JSON is a tenth of the decoded objects' memory (a dashboard ConfigMap's 17 kB of JSON packs
    into 2 kB; docs/adr/0025)."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in _UNPACKED}
    if obj.get("kind") in HANDED_OVER:
        meta["managedFields"] = [
            entry
            for entry in obj["metadata"].get("managedFields") or ()
            if entry.get("operation") == "Apply" and not entry.get("subresource")
        ]
    dropped = UNCACHED_FIELDS.get(str(obj.get("kind")), frozenset())
    kept = {
        k: v
        for k, v in obj.items()
        if (k != "status" or obj.get("kind") in STATUS_KINDS) and k not in dropped
    }
    # Not sorted (a fifth of the cost): the API server writes an object's fields in one order.
    text = json.dumps({**kept, "metadata": meta}, separators=(",", ":"))
    return zlib.compress(text.encode(), 1)


def _older(version: Any, than: Any) -> bool:
    """Whether resourceVersion ``version`` is older than ``than``. The API documents versions
    as opaque, but an etcd-backed API server (and the emulator) issues increasing integers;
    a version that is not an integer is never called older (docs/adr/0024)."""
    try:
        return int(version) < int(than)
    except (TypeError, ValueError):
        return False


@dataclass(slots=True)
class _Child:
    """One child in the index: what a resync and the index's own bookkeeping read, and the
    body, packed (:func:`_packed`), which only its owner's reconcile unpacks."""

    owner: str
    namespace: str
    key: tuple[str, str]
    version: Any
    packed: bytes
    seen: float
    """When its latest version arrived (monotonic), for :meth:`ChildIndex.replace`."""
    updates: int = 1
    """How many versions arrived: a listing reporting one seen before is a relist."""

    def body(self) -> dict[str, Any]:
        """The child as stored (a new dict each time: the caller may change it)."""
        body: dict[str, Any] = json.loads(zlib.decompress(self.packed))
        body["metadata"]["resourceVersion"] = self.version
        return body


class ChildIndex:
    """Every child the operator manages, by the uid of its controller: a cache fed by watch
    events (kopf's initial listing included) and by the answers to the operator's own writes.

    A resync reads only a revision number per owner (a dictionary lookup); a reconcile
    unpacks the children of its owner. ``update`` says whether an event can change its owner's
    reconcile: not the echo of a write whose answer is already here, and not a status change
    of a kind whose status no owner reads.
    """

    def __init__(self) -> None:
        self._children: dict[str, _Child] = {}
        """uid → child, for every object of the child kinds a Mirage kind controls."""
        self._by_owner: dict[str, dict[tuple[str, str], str]] = {}
        """owner uid → (kind, name) → child uid."""
        self._revisions: dict[str, int] = {}
        """owner uid → the value of ``_clock`` when one of its children last changed."""
        self._clock = 0
        """Counts changes of children; never goes back, so a revision is never reused."""
        self._names: dict[tuple[str, str, str], tuple[str, str | None]] = {}
        """(kind, namespace, name) → uid and controller reference (JSON) of every object of
        the child kinds, whoever made it: whether a child's name is taken, without a GET."""

    def __len__(self) -> int:
        return len(self._children)

    def __contains__(self, uid: object) -> bool:
        return uid in self._children

    def update(self, obj: Mapping[str, Any]) -> str | None:
        """Store the live ``obj``; the uid of the owner to reconcile because of it, if any."""
        meta = obj["metadata"]
        uid, owner = meta.get("uid", ""), controller_uid(obj)
        known = self._children.get(uid)
        previous_owner = known.owner if known is not None else None
        if previous_owner is not None and previous_owner != owner:
            self.remove(obj)
        name_key = _name_key(obj)
        ref = controller_of(obj)
        self._names[name_key] = (uid, json.dumps(ref) if ref is not None else None)
        if owner is None:
            return previous_owner
        children = self._by_owner.setdefault(owner, {})
        key = _key(obj)
        before_uid = children.get(key)
        before = self._children.get(before_uid) if before_uid is not None else None
        version = meta.get("resourceVersion")
        if before is not None and _older(version, before.version):
            # The answer to an apply processed after the watch already delivered a later
            # version (the status a controller wrote meanwhile): storing it would hide that
            # version, and no further event would bring it back.
            return None
        if before is not None and before_uid == uid and before.version == version:
            # The echo of a write whose answer is stored (or a relisting): nothing to pack.
            before.seen = time.monotonic()
            before.updates += 1
            return None
        packed = _packed(obj)
        if before_uid is not None and before_uid != uid:
            self._children.pop(before_uid, None)
        children[key] = uid
        updates = known.updates + 1 if known is not None and known.owner == owner else 1
        self._children[uid] = _Child(
            owner, name_key[1], key, version, packed, time.monotonic(), updates
        )
        self._changed(owner)
        if before is not None and before.packed == packed:
            return None
        return owner

    def _drop(self, uid: str) -> str | None:
        """Forget the child ``uid``; its owner's uid, if it was one."""
        child = self._children.pop(uid, None)
        if child is None:
            return None
        children = self._by_owner.get(child.owner, {})
        if children.get(child.key) == uid:
            del children[child.key]
        if not children:
            self._by_owner.pop(child.owner, None)
        self._changed(child.owner)
        return child.owner

    def _changed(self, owner_uid: str) -> None:
        self._clock += 1
        self._revisions[owner_uid] = self._clock

    def remove(self, obj: Mapping[str, Any]) -> str | None:
        """Forget a deleted ``obj``; the uid of its owner (to reconcile), if it had one."""
        uid = obj["metadata"].get("uid", "")
        name_key = _name_key(obj)
        if self._names.get(name_key, ("",))[0] == uid:
            del self._names[name_key]
        return self._drop(uid)

    def named(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object of that name, as far as ownership goes (kind, name, uid, controller
        reference), or ``None`` if the watches know of none."""
        entry = self._names.get((kind, namespace, name))
        if entry is None:
            return None
        uid, ref = entry
        refs = [json.loads(ref)] if ref is not None else []
        return {"kind": kind, "metadata": {"name": name, "uid": uid, "ownerReferences": refs}}

    def owned_by(self, owner_uid: str) -> Observed:
        """``(kind, name)`` → live child, for every child of ``owner_uid`` (unpacked: the
        caller owns the bodies)."""
        return {
            key: self._children[uid].body()
            for key, uid in self._by_owner.get(owner_uid, {}).items()
        }

    def revision(self, owner_uid: str) -> int:
        """A number that changes whenever a child of ``owner_uid`` is stored in a new version
        or dropped (0: none ever was): what a resync compares, in one dictionary lookup."""
        return self._revisions.get(owner_uid, 0)

    def forget_owner(self, owner_uid: str) -> None:
        """Drop every child of a deleted owner (garbage collection deletes them anyway)."""
        for uid in list(self._by_owner.get(owner_uid, {}).values()):
            self._drop(uid)
        self._revisions.pop(owner_uid, None)

    def relisted(self, uid: str) -> bool:
        """Whether a listing that reports ``uid`` (just stored by :meth:`update`) is not the
        first news of it: then a watch was restarted with a fresh listing, and objects deleted
        in the gap got no event."""
        child = self._children.get(uid)
        return child is not None and child.updates > 1

    def replace(self, kind: str, listed: Iterable[Mapping[str, Any]], since: float) -> set[str]:
        """Drop each child of ``kind`` that a listing started at ``since`` (monotonic) does not
        hold and that no event has refreshed since: it was deleted while no watch was open
        (a watch restarted with a listing reports no deletions). The uids of their owners."""
        present = {obj["metadata"].get("uid") for obj in listed}
        owners = set()
        for uid, child in list(self._children.items()):
            if child.key[0] == kind and uid not in present and child.seen < since:
                name_key = (kind, child.namespace, child.key[1])
                if self._names.get(name_key, ("",))[0] == uid:
                    del self._names[name_key]
                self._drop(uid)
                owners.add(child.owner)
        return owners


def observe_children(index: ChildIndex, *, owner: Mapping[str, Any]) -> Observed:
    """Every live child ``owner`` controls, from the watch-fed ``index`` (no API call)."""
    return index.owned_by(owner["metadata"]["uid"])


def _written(
    result: SyncResult,
    index: ChildIndex | None,
    key: tuple[str, str],
    live: dict[str, Any],
    *,
    drifted: bool,
) -> None:
    """Record the API server's answer to a write of the child ``key`` (into ``index`` too, so
    that the watch echo of the write is recognised)."""
    if index is not None:
        index.update(live)
    name = f"{key[0]}/{key[1]}"
    result.live[key] = live
    result.applied.append(name)
    metrics.CHILDREN_APPLIED.labels(kind=key[0]).inc()
    if drifted:
        result.restored.append(name)
        metrics.DRIFT_CORRECTIONS.labels(kind=key[0]).inc()


async def converge_children(
    kube: KubeClient,
    *,
    owner: Mapping[str, Any],
    desired: Sequence[Mapping[str, Any]],
    observed: Observed,
    field_manager: str,
    known: Iterable[tuple[str, str]] = (),
    keep: Iterable[tuple[str, str]] = (),
    index: ChildIndex | None = None,
    create: Iterable[tuple[str, str]] = (),
) -> SyncResult:
    """Apply what differs in ``desired``; delete observed children that are not desired.

    A desired child whose name is taken by an object ``owner`` does not control is skipped
    (the others are converged) and reported by :class:`ChildOwnedElsewhere` at the end.

    ``known`` names the ``(kind, name)`` children that existed after the previous sync, so
    that one found missing or changed counts as restored drift; none known makes the sync the
    owner's first (:attr:`SyncResult.initial`). ``keep`` names children to leave alone
    although not desired this round (a Deployment held back until its secrets are synced).
    A child that another owner controls is not written: :class:`ChildNameConflictError`
    names it once the others are converged. A child the API server refuses is recorded in
    ``failed`` and the others are still converged. Each apply's answer goes into ``index``
    (when given), so that the watch echo of the write is recognised and a reconcile before
    the echo does not write again. Whether an object of a child's name exists that ``owner``
    does not control comes from ``index`` (which the watches tell of every object of the
    child kinds), else from a GET.

    ``create`` names desired children not in ``observed`` whose name an object neither
    ``observed`` nor ``index`` can tell of may hold (a Secret: the watch sees only Mirage's).
    Each is created with a POST, never applied: the API server refuses it (409 AlreadyExists)
    when the name is taken, instead of the apply taking that object over, and no GET is
    spent on a name that is almost always free. A refused one is listed in ``taken``, and
    then nothing is deleted: the caller reads that object and decides (docs/adr/0126).
    """
    namespace = owner["metadata"]["namespace"]
    known_keys = set(known)
    result = SyncResult(initial=not known_keys)
    wanted = {_key(d): with_intent_hash(d) for d in desired}
    to_create = set(create)
    foreigners: list[str] = []
    conflicts: list[Problem] = []

    for key, body in wanted.items():
        resource = resources.for_kind(body["apiVersion"], body["kind"])
        live = observed.get(key)
        if live is None and key in to_create:
            name = f"{key[0]}/{key[1]}"
            try:
                created = await kube.create(
                    resource, namespace=namespace, body=body, field_manager=field_manager
                )
            except KubernetesAPIError as error:
                if error.status == 409 and error.api_reason == "AlreadyExists":
                    result.taken.append(key)
                else:
                    result.failed[name] = error.about(f"creating {name}")
                continue
            _written(result, index, key, created, drifted=key in known_keys)
            continue
        if live is None:
            # Not owned (yet): an object of this name someone else made is never taken over.
            live = (
                index.named(key[0], namespace, key[1])
                if index is not None
                else await kube.get(resource, namespace=namespace, name=key[1])
            )
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
            name = f"{key[0]}/{key[1]}"
            try:
                applied = await kube.apply(resource, body, field_manager=field_manager)
            except KubernetesAPIError as error:
                result.failed[name] = error.about(f"applying {name}")
                continue
            _written(result, index, key, applied, drifted=drifted)
        elif live is not None:
            result.live[key] = live
        live = result.live.get(key)
        if live is not None and (sealing := sealing_patch(body, live)):
            # An apply cannot remove what another field manager added: a merge patch can.
            name = f"{key[0]}/{key[1]}"
            try:
                patched = await kube.merge_patch(
                    resource,
                    namespace=namespace,
                    name=key[1],
                    patch=sealing,
                    field_manager=field_manager,
                )
            except KubernetesAPIError as error:
                result.failed[name] = error.about(f"reverting additions to {name}")
                continue
            if patched is not None:
                if index is not None:
                    index.update(patched)
                result.live[key] = patched
            if name not in result.applied:
                result.applied.append(name)
            if name not in result.restored:
                result.restored.append(name)
                metrics.DRIFT_CORRECTIONS.labels(kind=key[0]).inc()

    spared = set(wanted) | set(keep)
    # A child to create found its name taken: nothing goes before the caller has decided (a
    # VaultSecret's previous Secret stays until its new destination is written).
    gone: Observed = {} if result.taken else observed
    for key, item in gone.items():
        if key in spared or item["metadata"].get("deletionTimestamp"):
            continue
        name = f"{key[0]}/{key[1]}"
        try:
            await kube.delete(
                resources.for_kind(item["apiVersion"], item["kind"]),
                namespace=namespace,
                name=key[1],
                uid=item["metadata"]["uid"],
            )
        except KubernetesAPIError as error:
            result.failed[name] = error.about(f"deleting {name}")
            continue
        result.deleted.append(name)
        metrics.CHILDREN_DELETED.labels(kind=key[0]).inc()
    if conflicts:
        raise ChildNameConflictError(conflicts)
    if foreigners:
        raise ChildOwnedElsewhere(
            "; ".join(foreigners) + ": not taken over; delete or rename it", delay=60.0
        )
    return result
