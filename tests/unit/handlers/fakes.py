"""An in-memory stand-in for ``KubeClient``, shared by the handler tests."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from mirage_operator.errors import KubernetesAPIError
from mirage_operator.k8s.resources import Resource

Key = tuple[str, str, str]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a JSON merge patch (RFC 7386) to ``target`` in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeKube:
    """Just enough of ``KubeClient``: objects in a dict, every write recorded.

    ``fail`` maps a write ``(verb, kind)`` to how many of its next calls answer 503.
    ``gets`` records each GET as ``(kind, name, found)``; ``watchers`` are called with each
    object written or deleted through it (``deleted``), as a watch would deliver it.
    """

    def __init__(self, *, serves_prometheus_rules: bool = True) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.gets: list[tuple[str, str, bool]] = []
        self.watchers: list[Callable[[dict[str, Any], bool], None]] = []
        self.serves_prometheus_rules = serves_prometheus_rules
        self.fail: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)

    def _notify(self, obj: dict[str, Any], *, deleted: bool = False) -> None:
        for watcher in self.watchers:
            watcher(copy.deepcopy(obj), deleted)

    def _served(self, resource: Resource) -> None:
        if resource.kind == "PrometheusRule" and not self.serves_prometheus_rules:
            raise KubernetesAPIError(404, "the server could not find the requested resource")

    def _write(self, verb: str, kind: str, name: str) -> None:
        if self.fail.get((verb, kind)):
            self.fail[verb, kind] -= 1
            raise KubernetesAPIError(503, "the server is currently unable to handle the request")
        self.writes.append((verb, kind, name))

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``body`` as if someone created it (a uid is given when missing)."""
        meta = body["metadata"]
        meta.setdefault("uid", f"uid-{next(self._ids)}")
        self.objects[(body["kind"], meta.get("namespace", ""), meta["name"])] = body
        self._notify(body)
        return body

    async def get(self, resource: Resource, *, namespace: str | None, name: str) -> Any:
        self._served(resource)
        found = self.objects.get((resource.kind, namespace or "", name))
        self.gets.append((resource.kind, name, found is not None))
        return copy.deepcopy(found)

    async def create(
        self,
        resource: Resource,
        *,
        namespace: str | None,
        body: Any,
        name: str | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """POST: 409 AlreadyExists when an object of the name exists, as the API server."""
        self._served(resource)
        meta = body["metadata"]
        key = (body["kind"], namespace or "", meta["name"])
        if key in self.objects:
            raise KubernetesAPIError(
                409, f'{resource.plural} "{meta["name"]}" already exists', reason="AlreadyExists"
            )
        self._write("create", body["kind"], meta["name"])
        live = copy.deepcopy(body)
        live["metadata"]["uid"] = f"uid-{next(self._ids)}"
        self.objects[key] = live
        self._notify(live)
        return copy.deepcopy(live)

    async def list(
        self, resource: Resource, *, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self._served(resource)
        key, _, value = (label_selector or "").partition("=")
        return [
            copy.deepcopy(obj)
            for (kind, ns, _), obj in self.objects.items()
            if kind == resource.kind
            and ns == namespace
            and (not key or obj["metadata"].get("labels", {}).get(key) == value)
        ]

    async def apply(
        self, resource: Resource, body: Any, *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        self._served(resource)
        meta = body["metadata"]
        self._write("apply", body["kind"], meta["name"])
        key = (body["kind"], meta["namespace"], meta["name"])
        live = copy.deepcopy(body)
        live["metadata"]["uid"] = (
            self.objects.get(key, {}).get("metadata", {}).get("uid", f"uid-{next(self._ids)}")
        )
        self.objects[key] = live
        self._notify(live)
        return copy.deepcopy(live)

    async def patch_status(
        self, resource: Resource, *, namespace: str | None, name: str, status: Any
    ) -> dict[str, Any] | None:
        self._write("status", resource.kind, name)
        obj = self.objects[(resource.kind, namespace or "", name)]
        obj.setdefault("status", {})
        merge(obj["status"], copy.deepcopy(status))
        return copy.deepcopy(obj)

    async def merge_patch(
        self, resource: Resource, *, namespace: str | None, name: str, patch: Any
    ) -> dict[str, Any] | None:
        obj = self.objects.get((resource.kind, namespace or "", name))
        if obj is None:
            return None
        self._write("patch", resource.kind, name)
        merge(obj, copy.deepcopy(patch))
        self._notify(obj)
        return copy.deepcopy(obj)

    async def delete(
        self, resource: Resource, *, namespace: str | None, name: str, uid: str | None = None
    ) -> None:
        self._write("delete", resource.kind, name)
        gone = self.objects.pop((resource.kind, namespace or "", name), None)
        if gone is not None:
            self._notify(gone, deleted=True)

    async def request_token(
        self, namespace: str, service_account: str, audience: str, expiration_seconds: int
    ) -> str:
        """A token the Vault tests' reviewer knows (``jwt-<namespace>-<service account>``)."""
        return f"jwt-{namespace}-{service_account}"


class Connection:
    """``KubeConnection`` bound to a :class:`FakeKube`."""

    def __init__(self, client: FakeKube) -> None:
        self.client = client
