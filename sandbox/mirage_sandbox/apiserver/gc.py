"""Garbage collection and namespace/CRD cleanup, as kube-controller-manager does it.

- A dependent whose ``ownerReferences`` all point at objects that no longer exist (same uid)
  is deleted (background propagation); references to some missing owners are removed.
- An owner deleted with ``propagationPolicy: Foreground`` carries the ``foregroundDeletion``
  finalizer: its dependents are deleted first, then the finalizer is removed.
- An owner deleted with ``Orphan`` carries the ``orphan`` finalizer: the references to it are
  removed from its dependents, which stay, then the finalizer is removed.
- A terminating namespace is emptied, then its ``kubernetes`` finalizer is removed.
- A deleted CRD's custom resources are deleted, then its cleanup finalizer is removed.
"""

from __future__ import annotations

from typing import Any

from mirage_sandbox.apiserver.background import Worker
from mirage_sandbox.apiserver.cluster import CRD_CLEANUP_FINALIZER, Cluster
from mirage_sandbox.apiserver.resources import ResourceType, StorageKey
from mirage_sandbox.apiserver.store import Change, clone
from mirage_sandbox.errors import EmulatedAPIError

Obj = dict[str, Any]


class GarbageCollector(Worker):
    """The emulated garbage collector and namespace controller.

    A new or changed dependent is checked alone (are its owners there?); a deletion, or an
    object being deleted, triggers a sweep over every object, like the real collector's graph
    reacting to an owner's disappearance. Sweeps read the store without copying it."""

    name = "garbage-collector"

    def __init__(self, cluster: Cluster, *, delay: float = 0.0) -> None:
        super().__init__(cluster, delay=delay)
        self._sweep = True
        self._pending: set[tuple[StorageKey, str, str]] = set()

    def interested(self, change: Change) -> bool:
        """Deletions and objects being deleted need a sweep; new dependents a check."""
        meta = change.obj["metadata"]
        if change.type == "DELETED" or meta.get("deletionTimestamp"):
            self._sweep = True
            return True
        if meta.get("ownerReferences"):
            self._pending.add((change.storage, change.namespace, change.name))
            return True
        return False

    def work(self) -> bool:
        """One round. Its own writes wake the next round, so it never asks to run again by
        itself (that would spin while finalizers of others are pending)."""
        cluster = self.cluster
        with cluster._lock:
            if self._sweep:
                self._sweep = False
                self._pending.clear()
                self._full_sweep()
                return False
            pending, self._pending = self._pending, set()
            for storage, namespace, name in sorted(pending):
                obj = cluster.store.peek(storage, namespace or None, name)
                rt = cluster.catalog.for_storage(storage)
                if obj is not None and rt is not None:
                    self._collect(rt, obj)
        return False

    def _full_sweep(self) -> None:
        cluster = self.cluster
        objects: list[tuple[ResourceType, Obj]] = []
        for storage, obj in cluster.store.peek_all():
            rt = cluster.catalog.for_storage(storage)
            if rt is not None:
                objects.append((rt, obj))
        for rt, obj in objects:
            self._collect(rt, obj)
        for rt, obj in objects:
            meta = obj["metadata"]
            if not meta.get("deletionTimestamp"):
                continue
            finalizers = meta.get("finalizers") or []
            if "foregroundDeletion" in finalizers:
                self._foreground(rt, obj, objects)
            if "orphan" in finalizers:
                self._orphan(rt, obj, objects)
            if rt.kind == "Namespace" and rt.group == "":
                self._namespace(rt, obj, objects)
            if rt.kind == "CustomResourceDefinition" and CRD_CLEANUP_FINALIZER in finalizers:
                self._crd(rt, obj)

    def _owner_present(self, ref: Obj, dependent_ns: str | None) -> bool:
        owner_rt = self.cluster.catalog.by_kind(
            str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        )
        if owner_rt is None:
            return True  # an unknown kind cannot be proven absent: keep the dependent
        # A namespaced owner lives in its dependent's namespace.
        namespace = dependent_ns if owner_rt.namespaced else None
        owner = self.cluster.store.peek(owner_rt.storage, namespace, str(ref.get("name", "")))
        return owner is not None and owner["metadata"].get("uid") == ref.get("uid")

    def _collect(self, rt: ResourceType, obj: Obj) -> bool:
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        if not refs or meta.get("deletionTimestamp"):
            return False
        present = [r for r in refs if self._owner_present(r, meta.get("namespace"))]
        if len(present) == len(refs):
            return False
        try:
            if not present:
                self.cluster.delete(
                    rt, meta.get("namespace"), meta["name"], propagation="Background"
                )
            else:
                updated = clone(obj)
                updated["metadata"]["ownerReferences"] = present
                self.cluster.commit_system(rt, obj, updated)
        except EmulatedAPIError as exc:
            if exc.code not in {404, 409}:
                raise
        return True

    @staticmethod
    def _dependents(
        owner: Obj, objects: list[tuple[ResourceType, Obj]]
    ) -> list[tuple[ResourceType, Obj]]:
        uid = owner["metadata"]["uid"]
        return [
            (rt, o)
            for rt, o in objects
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def _drop_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> bool:
        updated = clone(obj)
        updated["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != finalizer
        ]
        if not updated["metadata"]["finalizers"]:
            del updated["metadata"]["finalizers"]
        try:
            self.cluster.commit_system(rt, obj, updated)
        except EmulatedAPIError as exc:
            if exc.code not in {404, 409}:
                raise
        return True

    def _foreground(
        self, rt: ResourceType, obj: Obj, objects: list[tuple[ResourceType, Obj]]
    ) -> bool:
        dependents = self._dependents(obj, objects)
        changed = False
        for dep_rt, dep in dependents:
            if not dep["metadata"].get("deletionTimestamp"):
                try:
                    self.cluster.delete(
                        dep_rt,
                        dep["metadata"].get("namespace"),
                        dep["metadata"]["name"],
                        propagation="Foreground",
                    )
                except EmulatedAPIError as exc:
                    if exc.code != 404:
                        raise
                changed = True
        blocking = [
            d
            for _, d in dependents
            if any(
                r.get("uid") == obj["metadata"]["uid"] and r.get("blockOwnerDeletion")
                for r in d["metadata"].get("ownerReferences") or []
            )
        ]
        if not blocking and not changed:
            return self._drop_finalizer(rt, obj, "foregroundDeletion")
        return changed

    def _orphan(self, rt: ResourceType, obj: Obj, objects: list[tuple[ResourceType, Obj]]) -> bool:
        uid = obj["metadata"]["uid"]
        for dep_rt, dep in self._dependents(obj, objects):
            updated = clone(dep)
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if refs:
                updated["metadata"]["ownerReferences"] = refs
            else:
                updated["metadata"].pop("ownerReferences", None)
            try:
                self.cluster.commit_system(dep_rt, dep, updated)
            except EmulatedAPIError as exc:
                if exc.code not in {404, 409}:
                    raise
                return True
        return self._drop_finalizer(rt, obj, "orphan")

    def _namespace(
        self, rt: ResourceType, ns: Obj, objects: list[tuple[ResourceType, Obj]]
    ) -> bool:
        name = ns["metadata"]["name"]
        content = [
            (r, o) for r, o in objects if r.namespaced and o["metadata"].get("namespace") == name
        ]
        for dep_rt, dep in content:
            if dep["metadata"].get("deletionTimestamp"):
                continue
            try:
                self.cluster.delete(dep_rt, name, dep["metadata"]["name"])
            except EmulatedAPIError as exc:
                if exc.code != 404:
                    raise
        if content:
            return True
        spec_finalizers = (ns.get("spec") or {}).get("finalizers") or []
        if "kubernetes" not in spec_finalizers:
            return False
        updated = clone(ns)
        updated["spec"]["finalizers"] = [f for f in spec_finalizers if f != "kubernetes"]
        self.cluster.commit_system(rt, ns, updated)
        return True

    def _crd(self, rt: ResourceType, crd: Obj) -> bool:
        spec = crd["spec"]
        storage = (spec["group"], spec["names"]["plural"])
        instances = self.cluster.store.list(storage)
        cr_rt = self.cluster.catalog.for_storage(storage)
        if instances and cr_rt is not None:
            for item in instances:
                if not item["metadata"].get("deletionTimestamp"):
                    try:
                        self.cluster.delete(
                            cr_rt, item["metadata"].get("namespace"), item["metadata"]["name"]
                        )
                    except EmulatedAPIError as exc:
                        if exc.code != 404:
                            raise
            return True
        return self._drop_finalizer(rt, crd, CRD_CLEANUP_FINALIZER)
