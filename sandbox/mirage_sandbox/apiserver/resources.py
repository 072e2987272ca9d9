"""The catalogue of resource types the emulated API server serves.

A :class:`ResourceType` describes one REST resource (``deployments.apps``) the way discovery
does. Built-ins come from a fixed table; CustomResourceDefinitions add and remove entries
while the server runs. Resources that share storage (``events`` in ``v1`` and
``events.k8s.io/v1``, the versions of one CRD) share a :attr:`ResourceType.storage` key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

StorageKey = tuple[str, str]
"""``(group, plural)`` of the storage a resource lives in."""

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served REST resource at one group/version."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    has_generation: bool = False
    """Whether ``metadata.generation`` is maintained (kinds with a spec)."""
    storage_group: str | None = None
    """Group of the shared storage when it differs from :attr:`group` (events.k8s.io)."""
    crd: Mapping[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)
    """The CustomResourceDefinition behind a custom resource; ``None`` for built-ins."""

    @property
    def api_version(self) -> str:
        """``group/version``, or ``version`` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage(self) -> StorageKey:
        """The storage this resource reads and writes."""
        return (self.storage_group if self.storage_group is not None else self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``plural.group`` as the API server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Kind.group`` as the API server names a kind in validation messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        """Whether writes to the main resource ignore ``status`` (a status subresource)."""
        return "status" in self.subresources

    def version_schema(self) -> Mapping[str, Any] | None:
        """The CRD's ``openAPIV3Schema`` for this version, if it is a custom resource."""
        if self.crd is None:
            return None
        for entry in self.crd["spec"]["versions"]:
            if entry["name"] == self.version:
                schema: Mapping[str, Any] | None = (entry.get("schema") or {}).get(
                    "openAPIV3Schema"
                )
                return schema
        return None

    def version_entry(self) -> Mapping[str, Any]:
        """The CRD's ``spec.versions[]`` entry of this version (empty for built-ins)."""
        for entry in (self.crd or {}).get("spec", {}).get("versions", []):
            if entry["name"] == self.version:
                return dict(entry)
        return {}


def _rt(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    gen: bool = False,
    verbs: tuple[str, ...] = STANDARD_VERBS,
    categories: tuple[str, ...] = (),
    storage_group: str | None = None,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=sub,
        verbs=verbs,
        has_generation=gen,
        storage_group=storage_group,
    )


_ALL = ("all",)

BUILTINS: tuple[ResourceType, ...] = (
    _rt(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short=("ns",),
        sub=("status", "finalize"),
    ),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",), sub=("token",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _rt("", "v1", "services", "Service", short=("svc",), sub=("status",), categories=_ALL),
    _rt("", "v1", "endpoints", "Endpoints", short=("ep",)),
    _rt("", "v1", "events", "Event", short=("ev",)),
    _rt("", "v1", "pods", "Pod", short=("po",), sub=("status",), gen=True, categories=_ALL),
    _rt(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), sub=("status",)
    ),
    _rt("", "v1", "resourcequotas", "ResourceQuota", short=("quota",), sub=("status",)),
    _rt("", "v1", "limitranges", "LimitRange", short=("limits",)),
    _rt("", "v1", "nodes", "Node", namespaced=False, short=("no",), sub=("status",)),
    _rt(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short=("deploy",),
        sub=("status", "scale"),
        gen=True,
        categories=_ALL,
    ),
    _rt(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        short=("sts",),
        sub=("status", "scale"),
        gen=True,
        categories=_ALL,
    ),
    _rt(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        short=("ds",),
        sub=("status",),
        gen=True,
        categories=_ALL,
    ),
    _rt(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short=("rs",),
        sub=("status", "scale"),
        gen=True,
        categories=_ALL,
    ),
    _rt(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=("hpa",),
        sub=("status",),
        categories=_ALL,
    ),
    _rt(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short=("pdb",),
        sub=("status",),
        gen=True,
    ),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",), gen=True),
    _rt(
        "networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), sub=("status",), gen=True
    ),
    _rt("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False),
    _rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    _rt("coordination.k8s.io", "v1", "leases", "Lease"),
    _rt("events.k8s.io", "v1", "events", "Event", short=("ev",), storage_group=""),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _rt(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        sub=("status",),
        gen=True,
        categories=("api-extensions",),
    ),
    _rt(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        namespaced=False,
        verbs=("create",),
    ),
    _rt(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
    ),
)

# Group preference order in discovery, like the real server (core groups first).
GROUP_ORDER = (
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "discovery.k8s.io",
    "coordination.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
)


def crd_resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """One :class:`ResourceType` per served version of ``crd``."""
    spec = crd["spec"]
    names = spec["names"]
    result = []
    for entry in spec["versions"]:
        if not entry.get("served", True):
            continue
        subresources = entry.get("subresources") or {}
        result.append(
            ResourceType(
                group=spec["group"],
                version=entry["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(sorted(subresources)),
                has_generation=True,
                crd=crd,
            )
        )
    return result


def storage_version(crd: Mapping[str, Any]) -> str:
    """The version marked ``storage: true`` (the first one if none is)."""
    versions = crd["spec"]["versions"]
    for entry in versions:
        if entry.get("storage"):
            return str(entry["name"])
    return str(versions[0]["name"])


class Catalog:
    """The resource types currently served; thread-safe, changed as CRDs come and go."""

    def __init__(self, builtins: Iterable[ResourceType] = BUILTINS) -> None:
        self._lock = threading.RLock()
        self._builtins = tuple(builtins)
        self._custom: dict[str, list[ResourceType]] = {}  # by CRD name

    def __iter__(self) -> Iterator[ResourceType]:
        with self._lock:
            items = list(self._builtins)
            for types in self._custom.values():
                items.extend(types)
        return iter(items)

    def register_crd(self, crd: Mapping[str, Any]) -> None:
        """Serve (or re-serve with a changed definition) the custom resource of ``crd``."""
        with self._lock:
            self._custom[crd["metadata"]["name"]] = crd_resource_types(crd)

    def unregister_crd(self, name: str) -> None:
        """Stop serving the custom resource of the CRD called ``name``."""
        with self._lock:
            self._custom.pop(name, None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The resource served at ``/apis/<group>/<version>/<plural>``."""
        for rt in self:
            if rt.group == group and rt.version == version and rt.plural == plural:
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource whose objects have ``apiVersion``/``kind`` (for owner references)."""
        group, _, version = api_version.rpartition("/")
        for rt in self:
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        # Another version of the same group/kind shares the storage, which is what matters.
        for rt in self:
            if rt.group == group and rt.kind == kind:
                return rt
        return None

    def for_storage(self, key: StorageKey) -> ResourceType | None:
        """The preferred resource type reading and writing storage ``key``."""
        candidates = [rt for rt in self if rt.storage == key]
        for rt in candidates:
            if rt.crd is not None and rt.version == storage_version(rt.crd):
                return rt
        for rt in candidates:
            if rt.group == key[0]:
                return rt
        return candidates[0] if candidates else None

    def resolve(self, name: str) -> ResourceType:
        """Find a resource the way ``kubectl`` does: plural, singular, short name or kind,
        optionally qualified with ``.group`` (``deployments.apps``, ``msvc``)."""
        lowered = name.lower()
        types = list(self)
        for rt in types:
            if lowered in {rt.qualified, f"{rt.plural}.{rt.version}.{rt.group}"}:
                return self.for_storage(rt.storage) or rt
        for rt in types:
            aliases = {rt.plural, rt.singular, rt.kind.lower(), *rt.short_names}
            qualified = {f"{alias}.{rt.group}" for alias in aliases if rt.group}
            if lowered in aliases or lowered in qualified:
                return self.for_storage(rt.storage) or rt
        raise KeyError(f"the server doesn't have a resource type {name!r}")
