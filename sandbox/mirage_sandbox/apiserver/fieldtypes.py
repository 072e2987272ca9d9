"""How lists and maps of each kind merge: the part of the OpenAPI types patches need.

Strategic merge patch and server-side apply both need to know, for a list at some path,
whether it is *atomic* (replaced whole), a *set* of scalars, or a *map* keyed by some fields
(``containers`` by ``name``). For custom resources the CRD schema says so
(``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``, ``x-kubernetes-map-type``); for
built-ins a table of the list merge keys of the kinds this project writes stands in for the
Go struct tags. Paths are tuples of field names, with ``"*"`` for "any list item".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Path = tuple[str, ...]


@dataclass(frozen=True)
class ListType:
    """How a list merges."""

    kind: str
    """``atomic``, ``set`` or ``map``."""
    keys: tuple[str, ...] = ()
    """The list-map keys (``map`` only); the first one is the strategic-merge key."""


ATOMIC = ListType("atomic")
SET = ListType("set")

# Defaults of key fields, so that an item written without them still has a key
# (the real schemas declare these defaults; e.g. ports without ``protocol`` mean TCP).
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}

_CONTAINERS = ("containers", "initContainers", "ephemeralContainers")

# (path suffix, kinds it applies to or None for all, list type)
_BUILTIN_LISTS: tuple[tuple[Path, frozenset[str] | None, ListType], ...] = (
    (("metadata", "ownerReferences"), None, ListType("map", ("uid",))),
    (("metadata", "finalizers"), None, SET),
    *(((c,), None, ListType("map", ("name",))) for c in _CONTAINERS),
    *(((c, "*", "env"), None, ListType("map", ("name",))) for c in _CONTAINERS),
    *(
        ((c, "*", "ports"), None, ListType("map", ("containerPort", "protocol")))
        for c in _CONTAINERS
    ),
    *(((c, "*", "volumeMounts"), None, ListType("map", ("mountPath",))) for c in _CONTAINERS),
    *(((c, "*", "volumeDevices"), None, ListType("map", ("devicePath",))) for c in _CONTAINERS),
    *(((c, "*", "resizePolicy"), None, ListType("map", ("resourceName",))) for c in _CONTAINERS),
    (("spec", "volumes"), None, ListType("map", ("name",))),
    (("spec", "imagePullSecrets"), None, ListType("map", ("name",))),
    (("spec", "hostAliases"), None, ListType("map", ("ip",))),
    (
        ("spec", "topologySpreadConstraints"),
        None,
        ListType("map", ("topologyKey", "whenUnsatisfiable")),
    ),
    (("spec", "schedulingGates"), None, ListType("map", ("name",))),
    (("spec", "resourceClaims"), None, ListType("map", ("name",))),
    (("spec", "ports"), frozenset({"Service"}), ListType("map", ("port", "protocol"))),
    (("secrets",), frozenset({"ServiceAccount"}), ListType("map", ("name",))),
    (("imagePullSecrets",), frozenset({"ServiceAccount"}), ListType("map", ("name",))),
    (("status", "conditions"), None, ListType("map", ("type",))),
    (("spec", "finalizers"), frozenset({"Namespace"}), SET),
)


def _matches(path: Path, suffix: Path) -> bool:
    return len(path) >= len(suffix) and path[len(path) - len(suffix) :] == suffix


class TypeOracle(Protocol):
    """Answers how the list or map at a path merges."""

    def list_type(self, path: Path) -> ListType:
        """The merge behaviour of the list at ``path``."""
        ...

    def atomic_map(self, path: Path) -> bool:
        """Whether the map at ``path`` is replaced whole (``x-kubernetes-map-type: atomic``)."""
        ...


class BuiltinTypes:
    """The merge table of one built-in kind; lists not in the table are atomic."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def list_type(self, path: Path) -> ListType:
        """See :class:`TypeOracle`."""
        for suffix, kinds, list_type in _BUILTIN_LISTS:
            if (kinds is None or self.kind in kinds) and _matches(path, suffix):
                # Only top-level/embedded object metadata, never a field called "metadata" deeper.
                return list_type
        return ATOMIC

    def atomic_map(self, path: Path) -> bool:
        """See :class:`TypeOracle`."""
        return False


class SchemaTypes:
    """Merge behaviour read from a CRD's structural schema; ``metadata`` as for built-ins."""

    def __init__(self, schema: Mapping[str, Any] | None, kind: str = "") -> None:
        self.schema = schema or {}
        self._meta = BuiltinTypes(kind)

    def _node(self, path: Path) -> Mapping[str, Any] | None:
        node: Mapping[str, Any] | None = self.schema
        for part in path:
            if node is None:
                return None
            if part == "*":
                items = node.get("items")
                node = items if isinstance(items, Mapping) else None
                continue
            props = node.get("properties") or {}
            if part in props:
                node = props[part]
            elif isinstance(node.get("additionalProperties"), Mapping):
                node = node["additionalProperties"]
            else:
                return None
        return node

    def _in_metadata(self, path: Path) -> bool:
        if not path:
            return False
        if path[0] == "metadata":
            return True
        # Embedded resources (x-kubernetes-embedded-resource) carry ObjectMeta too.
        for i, part in enumerate(path):
            if part == "metadata":
                parent = self._node(path[:i])
                if parent is not None and parent.get("x-kubernetes-embedded-resource"):
                    return True
        return False

    def list_type(self, path: Path) -> ListType:
        """See :class:`TypeOracle`."""
        if self._in_metadata(path):
            return self._meta.list_type(path)
        node = self._node(path)
        if node is None:
            return ATOMIC
        kind = node.get("x-kubernetes-list-type", "atomic")
        if kind == "map":
            return ListType("map", tuple(node.get("x-kubernetes-list-map-keys") or ()))
        if kind == "set":
            return SET
        return ATOMIC

    def atomic_map(self, path: Path) -> bool:
        """See :class:`TypeOracle`."""
        if self._in_metadata(path):
            return False
        node = self._node(path)
        return bool(node is not None and node.get("x-kubernetes-map-type") == "atomic")


def item_key(item: Any, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The key of a list-map item (key fields, defaulted where the schema defaults them)."""
    if not isinstance(item, Mapping):
        return None
    key = {}
    for name in keys:
        if name in item and item[name] is not None:
            key[name] = item[name]
        elif name in KEY_DEFAULTS:
            key[name] = KEY_DEFAULTS[name]
        else:
            # A missing non-defaulted key field: identify by the fields that are present.
            continue
    return key or None
