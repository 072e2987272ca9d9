"""Discovery documents: ``/version``, ``/api``, ``/apis``, group/version resource lists.

Both the legacy documents (``APIVersions``, ``APIGroupList``, ``APIResourceList``) that kopf
reads, and the aggregated ``apidiscovery.k8s.io/v2`` ``APIGroupDiscoveryList`` that kubectl
asks for first (through its ``Accept`` header), generated from the live catalogue so that a
CRD is discoverable as soon as it is created.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from mirage_sandbox.apiserver.resources import GROUP_ORDER, Catalog, ResourceType

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBERNETES_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.1-mirage"}

# Subresource name -> (group, version, kind, verbs); None for kind means "the resource's own".
_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None, tuple[str, ...]]] = {
    "status": (None, None, None, ("get", "patch", "update")),
    "scale": ("autoscaling", "v1", "Scale", ("get", "patch", "update")),
    "token": ("authentication.k8s.io", "v1", "TokenRequest", ("create",)),
    "finalize": (None, None, None, ("update",)),
}


def version_info() -> dict[str, str]:
    """The ``/version`` document."""
    return {
        **KUBERNETES_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _groups(catalog: Catalog) -> dict[str, list[str]]:
    """Group -> versions (preferred first)."""
    groups: dict[str, list[str]] = {}
    for rt in catalog:
        versions = groups.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)
    for group, versions in groups.items():
        crd_pref = _crd_preferred(catalog, group)
        versions.sort(key=lambda v: (v != crd_pref, _version_rank(v)))
    return groups


def _crd_preferred(catalog: Catalog, group: str) -> str | None:
    versions = [rt.version for rt in catalog if rt.group == group and rt.crd is not None]
    return sorted(versions, key=_version_rank)[0] if versions else None


def _version_rank(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, higher numbers first."""
    match = re.match(r"^v(\d+)(?:(alpha|beta)(\d+))?\Z", version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -int(major), -int(minor or 0))


def _ordered_groups(catalog: Catalog) -> list[tuple[str, list[str]]]:
    groups = _groups(catalog)
    known = [g for g in GROUP_ORDER if g in groups]
    custom = sorted(g for g in groups if g not in GROUP_ORDER)
    return [(g, groups[g]) for g in [*known, *custom]]


def api_versions(server_address: str) -> dict[str, Any]:
    """``/api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(catalog: Catalog) -> dict[str, Any]:
    """``/apis``."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in _ordered_groups(catalog) if g],
    }


def api_group(catalog: Catalog, group: str) -> dict[str, Any] | None:
    """``/apis/<group>``."""
    versions = _groups(catalog).get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _storage_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _resources(catalog: Catalog, group: str, version: str) -> list[ResourceType]:
    return sorted(
        (rt for rt in catalog if rt.group == group and rt.version == version),
        key=lambda rt: rt.plural,
    )


def resource_list(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/<group>/<version>``: an ``APIResourceList`` (None if unknown)."""
    types = _resources(catalog, group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        if "list" in rt.verbs:
            entry["storageVersionHash"] = _storage_hash(rt)
        resources.append(entry)
        for sub in rt.subresources:
            sub_group, sub_version, sub_kind, verbs = _SUBRESOURCES.get(
                sub, (None, None, None, ("get",))
            )
            item: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub_kind or rt.kind,
                "verbs": list(verbs),
            }
            if sub_group is not None:
                item["group"] = sub_group
                item["version"] = sub_version
            resources.append(item)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        sub_group, sub_version, sub_kind, verbs = _SUBRESOURCES.get(
            sub, (None, None, None, ("get",))
        )
        subs.append(
            {
                "subresource": sub,
                "responseKind": {
                    "group": rt.group if sub_group is None else sub_group,
                    "version": rt.version if sub_version is None else sub_version,
                    "kind": sub_kind or rt.kind,
                },
                "verbs": list(verbs),
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(catalog: Catalog, *, legacy: bool) -> dict[str, Any]:
    """The ``APIGroupDiscoveryList`` of ``/api`` (``legacy``) or ``/apis``."""
    items = []
    for group, versions in _ordered_groups(catalog):
        if bool(group) == legacy:
            continue
        items.append(
            {
                "metadata": {"name": group, "creationTimestamp": None},
                "versions": [
                    {
                        "version": v,
                        "resources": [
                            _aggregated_resource(rt) for rt in _resources(catalog, group, v)
                        ],
                        "freshness": "Current",
                    }
                    for v in versions
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def wants_aggregated(accept: str) -> bool:
    """Whether an ``Accept`` header asks for aggregated discovery v2 (kubectl does)."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def group_versions(catalog: Catalog) -> Iterable[tuple[str, str]]:
    """Every served (group, version)."""
    for group, versions in _ordered_groups(catalog):
        for version in versions:
            yield group, version
