"""A tiny kube-controller-manager: workload status converges so the sandbox converges.

Pods and ReplicaSets are not simulated; instead, shortly after a Deployment, StatefulSet or
DaemonSet changes (``delay``, default immediately) its ``status`` is written as if every
replica were scheduled, updated, ready and available: ``observedGeneration`` catches up with
``metadata.generation`` and the ``Available``/``Progressing`` conditions are ``True``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mirage_sandbox.apiserver.background import Worker
from mirage_sandbox.apiserver.cluster import (
    MERGE_PATCH,
    Cluster,
    WriteOptions,
    now_rfc3339,
)
from mirage_sandbox.apiserver.resources import StorageKey
from mirage_sandbox.apiserver.store import Change
from mirage_sandbox.errors import EmulatedAPIError

WORKLOADS = {
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
}
MANAGER = "kube-controller-manager"

Obj = dict[str, Any]


def _condition(previous: list[Obj], ctype: str, reason: str, message: str, stamp: str) -> Obj:
    old = next((c for c in previous if c.get("type") == ctype), None)
    since = (
        old["lastTransitionTime"]
        if old and old.get("status") == "True" and old.get("lastTransitionTime")
        else stamp
    )
    return {
        "type": ctype,
        "status": "True",
        "lastUpdateTime": stamp,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }


def _hash(obj: Obj) -> str:
    template = repr(sorted(((obj.get("spec") or {}).get("template") or {}).items()))
    return hashlib.sha256(template.encode()).hexdigest()[:10]


def workload_status(kind: str, obj: Obj) -> Obj:
    """The status a healthy controller would report for ``obj`` right now."""
    spec = obj.get("spec") or {}
    meta = obj["metadata"]
    generation = meta.get("generation", 1)
    stamp = now_rfc3339()
    previous = (obj.get("status") or {}).get("conditions") or []
    replicas = int(spec.get("replicas", 1))
    if kind == "Deployment":
        status: Obj = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
        }
        if replicas:
            status["readyReplicas"] = replicas
            status["availableReplicas"] = replicas
        status["conditions"] = [
            _condition(
                previous,
                "Available",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                stamp,
            ),
            _condition(
                previous,
                "Progressing",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{meta["name"]}-{_hash(obj)}" has successfully progressed.',
                stamp,
            ),
        ]
        return status
    if kind == "StatefulSet":
        revision = f"{meta['name']}-{_hash(obj)}"
        return {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": replicas,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        }
    if kind == "DaemonSet":
        return {
            "observedGeneration": generation,
            "currentNumberScheduled": 1,
            "desiredNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "updatedNumberScheduled": 1,
            "numberMisscheduled": 0,
        }
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "fullyLabeledReplicas": replicas,
    }


class Controllers(Worker):
    """Workload status controllers: each changed workload is brought up to date."""

    name = "controller-manager"

    def __init__(self, cluster: Cluster, *, delay: float = 0.0) -> None:
        super().__init__(cluster, delay=delay)
        self._pending: set[tuple[StorageKey, str, str]] = set()

    def interested(self, change: Change) -> bool:
        """Workload changes (their status may lag their generation)."""
        if change.storage in WORKLOADS and change.type != "DELETED":
            self._pending.add((change.storage, change.namespace, change.name))
            return True
        return False

    def work(self) -> bool:
        """Bring the status of every changed workload up to date."""
        cluster = self.cluster
        pending, self._pending = self._pending, set()
        for storage, namespace, name in sorted(pending):
            rt = cluster.catalog.for_storage(storage)
            obj = cluster.store.peek(storage, namespace or None, name)
            if rt is None or obj is None:
                continue
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            current = obj.get("status") or {}
            if current.get("observedGeneration") == meta.get(
                "generation"
            ) and not self._replicas_changed(rt.kind, obj):
                continue
            try:
                cluster.patch(
                    rt,
                    meta.get("namespace"),
                    meta["name"],
                    MERGE_PATCH,
                    {
                        "metadata": {"resourceVersion": meta["resourceVersion"]},
                        "status": workload_status(rt.kind, obj),
                    },
                    WriteOptions(field_manager=MANAGER),
                    subresource="status",
                )
            except EmulatedAPIError as exc:
                if exc.code not in {404, 409}:
                    raise
                if exc.code == 409:
                    self._pending.add((storage, namespace, name))
        return bool(self._pending)

    @staticmethod
    def _replicas_changed(kind: str, obj: Obj) -> bool:
        if kind not in {"Deployment", "StatefulSet", "ReplicaSet"}:
            return False
        return (obj.get("status") or {}).get("replicas") != int(
            (obj.get("spec") or {}).get("replicas", 1)
        )
