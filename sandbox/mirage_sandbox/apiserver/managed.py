"""Managed fields and server-side apply, after sigs.k8s.io/structured-merge-diff.

Every write records which *field manager* owns which fields, in ``metadata.managedFields``
(``fieldsV1``: ``f:<field>`` for map fields, ``k:{"name":"x"}`` for items of keyed lists,
``v:<value>`` for members of sets, ``.`` for "the item itself").

- An *update* (create, PUT, non-apply PATCH) gives its manager the fields it changed and takes
  them from everybody else; fields it removed are removed from every manager.
- An *apply* makes its manager own exactly the fields of the applied configuration. A field
  another manager owns with a different value is a *conflict* (409) unless ``force`` moves
  it. A field the manager applied before, no longer applies, and nobody else owns is removed
  from the object.
- Upgrading from client-side apply (the API server's last-applied manager and updater): an
  apply by the manager ``kubectl`` may take, without conflict, the fields recorded in the
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation whose live value still
  matches it; and when that annotation exists, it is rewritten to the applied configuration.

Internally a field is a path: a tuple of the ``fieldsV1`` keys from the root.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirage_sandbox.apiserver.fieldtypes import Path, TypeOracle, item_key

FieldPath = tuple[str, ...]

# Metadata the server owns: never part of anybody's field set.
SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


@dataclass
class Entry:
    """One ``managedFields`` entry."""

    manager: str
    operation: str
    api_version: str
    fields: set[FieldPath] = field(default_factory=set)
    subresource: str = ""
    time: str = ""

    def same_slot(self, other: Entry) -> bool:
        """Whether both entries describe the same manager/operation/subresource."""
        return (self.manager, self.operation, self.subresource) == (
            other.manager,
            other.operation,
            other.subresource,
        )

    def describe(self) -> str:
        """The manager as conflict messages name it."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
            if self.time:
                text += f" at {self.time}"
        return text


@dataclass(frozen=True)
class Conflict:
    """A field another manager owns with a different value."""

    entry: Entry
    path: FieldPath


class ApplyConflict(Exception):
    """Apply without ``force`` would take fields from other managers."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(conflict_message(conflicts))


# -- paths -----------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def render_path(path: FieldPath) -> str:
    """A field path as conflict messages show it: ``.spec.containers[name="app"].image``."""
    out = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append(f".{rest}")
        elif kind == "k":
            keys = json.loads(rest)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


def conflict_message(conflicts: list[Conflict]) -> str:
    """``Apply failed with N conflict(s): conflict(s) with "manager": <fields>``."""
    by_manager: dict[str, list[str]] = {}
    for c in conflicts:
        by_manager.setdefault(c.entry.describe(), []).append(render_path(c.path))
    count = len(conflicts)
    head = f"Apply failed with {count} conflict{'s' if count != 1 else ''}: "
    parts = []
    for manager, paths in by_manager.items():
        if len(paths) == 1:
            parts.append(f"conflict with {manager}: {paths[0]}")
        else:
            parts.append(f"conflicts with {manager}:\n" + "\n".join(f"- {p}" for p in paths))
    return head + "\n".join(parts)


# -- field sets ------------------------------------------------------------------------------


def field_set(obj: Mapping[str, Any], types: TypeOracle, *, part: str = "all") -> set[FieldPath]:
    """The fields set in ``obj``. ``part`` is ``all``, ``main`` (everything but ``status``)
    or ``status`` (only ``status``)."""
    out: set[FieldPath] = set()
    for key, value in obj.items():
        if key in {"apiVersion", "kind"} or value is None:
            continue
        if (part == "main" and key == "status") or (part == "status" and key != "status"):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            meta = {k: v for k, v in value.items() if k not in SERVER_METADATA}
            for mkey, mvalue in meta.items():
                _walk(mvalue, ("f:metadata", f"f:{mkey}"), ("metadata", mkey), types, out)
            continue
        _walk(value, (f"f:{key}",), (key,), types, out)
    return out


def _walk(
    value: Any, fpath: FieldPath, npath: Path, types: TypeOracle, out: set[FieldPath]
) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        children = {k: v for k, v in value.items() if v is not None}
        if not children or types.atomic_map(npath):
            out.add(fpath)
            return
        for key, child in children.items():
            _walk(child, (*fpath, f"f:{key}"), (*npath, key), types, out)
        return
    if isinstance(value, list):
        list_type = types.list_type(npath)
        if not value or list_type.kind == "atomic":
            out.add(fpath)
            return
        if list_type.kind == "set":
            for item in value:
                out.add((*fpath, f"v:{_compact(item)}"))
            return
        keys = [item_key(item, list_type.keys) for item in value]
        if any(k is None for k in keys):
            out.add(fpath)  # unkeyable items: the list can only be owned whole
            return
        for item, key in zip(value, keys, strict=True):
            item_path = (*fpath, f"k:{_compact(key)}")
            out.add(item_path)
            _walk(item, item_path, (*npath, "*"), types, out)
        return
    out.add(fpath)


_MISSING = object()


def value_at(obj: Any, path: FieldPath) -> Any:
    """The value at ``path`` in ``obj``, or a sentinel when absent (see :func:`has_value`)."""
    node = obj
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(node, Mapping) or rest not in node:
                return _MISSING
            node = node[rest]
        elif kind == "k":
            if not isinstance(node, list):
                return _MISSING
            wanted = json.loads(rest)
            node = next((i for i in node if item_key(i, tuple(wanted)) == wanted), _MISSING)
            if node is _MISSING:
                return _MISSING
        elif kind == "v":
            wanted = json.loads(rest)
            if not isinstance(node, list) or wanted not in node:
                return _MISSING
            node = wanted
        else:
            return _MISSING
    return node


def has_value(value: Any) -> bool:
    """Whether :func:`value_at` found something."""
    return value is not _MISSING


def _is_container_path(path: FieldPath) -> bool:
    return bool(path) and path[-1].startswith(("k:", "v:"))


def _delete_at(obj: Any, path: FieldPath) -> bool:
    """Remove the field or item at ``path``; whether something was removed."""
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    if not has_value(parent):
        return False
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict) and rest in parent:
        del parent[rest]
        return True
    if kind in {"k", "v"} and isinstance(parent, list):
        wanted = json.loads(rest)
        for index, item in enumerate(parent):
            hit = item_key(item, tuple(wanted)) == wanted if kind == "k" else item == wanted
            if hit:
                parent.pop(index)
                return True
    return False


# -- fieldsV1 --------------------------------------------------------------------------------


def to_fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """Serialise a field set into the nested ``fieldsV1`` form."""
    owned = set(paths)
    root: dict[str, Any] = {}
    for path in sorted(owned):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in owned:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(node[k]) for k in sorted(node, key=lambda k: (k != ".", k))}


def from_fields_v1(tree: Mapping[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    """Parse a ``fieldsV1`` tree into a field set."""
    out: set[FieldPath] = set()
    for key, child in tree.items():
        if key == ".":
            out.add(prefix)
            continue
        path = (*prefix, key)
        if not child:
            out.add(path)
        else:
            out |= from_fields_v1(child, path)
    return out


def parse_entries(obj: Mapping[str, Any]) -> list[Entry]:
    """The ``managedFields`` of ``obj`` as entries."""
    entries = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or []:
        entries.append(
            Entry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                fields=from_fields_v1(raw.get("fieldsV1") or {}),
                subresource=raw.get("subresource", ""),
                time=raw.get("time", ""),
            )
        )
    return entries


def render_entries(entries: list[Entry]) -> list[dict[str, Any]]:
    """Entries in the ``managedFields`` wire format (empty ones dropped)."""
    out = []
    for e in entries:
        if not e.fields:
            continue
        raw: dict[str, Any] = {
            "manager": e.manager,
            "operation": e.operation,
            "apiVersion": e.api_version,
            "time": e.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(e.fields),
        }
        if e.subresource:
            raw["subresource"] = e.subresource
        out.append(raw)
    return out


# -- updates ---------------------------------------------------------------------------------


def track_update(
    entries: list[Entry],
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    me: Entry,
    types: TypeOracle,
    *,
    part: str,
) -> list[Entry]:
    """Managed fields after an update by ``me`` (an ``Update`` entry with its time set)."""
    old_set = field_set(old, types, part=part) if old else set()
    new_set = field_set(new, types, part=part)
    changed = {
        p
        for p in new_set
        if p not in old_set or (not _is_container_path(p) and value_at(old, p) != value_at(new, p))
    }
    removed = old_set - new_set
    result: list[Entry] = []
    mine: Entry | None = None
    for entry in entries:
        entry = copy.copy(entry)
        if entry.same_slot(me):
            mine = entry
            entry.fields = (entry.fields | changed) - removed
            if changed:
                entry.time = me.time
                entry.api_version = me.api_version
        else:
            entry.fields = entry.fields - removed - changed
        result.append(entry)
    if mine is None and changed:
        result.append(Entry(me.manager, "Update", me.api_version, changed, me.subresource, me.time))
    return [e for e in result if e.fields]


# -- apply -----------------------------------------------------------------------------------


def strip_server_fields(applied: Mapping[str, Any]) -> dict[str, Any]:
    """The applied configuration without what only the server sets (keeps name/namespace)."""
    out = copy.deepcopy(dict(applied))
    meta = out.get("metadata")
    if isinstance(meta, dict):
        keep = {"name", "namespace"}
        out["metadata"] = {k: v for k, v in meta.items() if k not in SERVER_METADATA or k in keep}
    return out


def _merge(live: Any, applied: Any, npath: Path, types: TypeOracle) -> Any:
    if isinstance(applied, Mapping) and isinstance(live, Mapping) and not types.atomic_map(npath):
        out = dict(live)
        for key, value in applied.items():
            if value is None:
                continue
            out[key] = _merge(live.get(key), value, (*npath, key), types)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        list_type = types.list_type(npath)
        if list_type.kind == "set":
            merged = list(live)
            merged.extend(v for v in applied if v not in live)
            return merged
        if list_type.kind == "map":
            merged = list(live)
            for item in applied:
                key = item_key(item, list_type.keys)
                index = next(
                    (i for i, x in enumerate(merged) if key and item_key(x, list_type.keys) == key),
                    None,
                )
                if index is None:
                    merged.append(_drop_nulls(item))
                else:
                    merged[index] = _merge(merged[index], item, (*npath, "*"), types)
            return merged
    return _drop_nulls(applied)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def apply(
    live: Mapping[str, Any] | None,
    applied: Mapping[str, Any],
    entries: list[Entry],
    me: Entry,
    types: TypeOracle,
    *,
    force: bool,
    part: str,
) -> tuple[dict[str, Any], list[Entry]]:
    """Server-side apply of ``applied`` by ``me`` (an ``Apply`` entry with its time set).

    Returns the merged object and its new managed fields; raises :class:`ApplyConflict`.
    ``part`` limits the fields to ``main`` or ``status`` for kinds with a status subresource.
    """
    config = strip_server_fields(applied)
    if part == "main":
        config.pop("status", None)
    elif part == "status":
        config = {
            k: v for k, v in config.items() if k in {"apiVersion", "kind", "metadata", "status"}
        }
        config["metadata"] = {
            k: v for k, v in (config.get("metadata") or {}).items() if k in {"name", "namespace"}
        }
    base: dict[str, Any] = copy.deepcopy(dict(live)) if live else {}
    entries = [copy.copy(e) for e in entries]
    if live and not entries:
        # Objects written before anybody tracked fields: their fields go to a pseudo-manager.
        legacy = field_set(live, types, part=part)
        if legacy:
            entries.append(
                Entry(
                    "before-first-apply", "Update", me.api_version, legacy, me.subresource, me.time
                )
            )
    applied_set = field_set(config, types, part=part)
    previous = next((e for e in entries if e.same_slot(me)), None)
    others = [e for e in entries if not e.same_slot(me)]

    conflicts = []
    for path in sorted(applied_set):
        if _is_container_path(path):
            continue
        wanted = value_at(config, path)
        current = value_at(base, path)
        if has_value(current) and current == wanted:
            continue
        for entry in others:
            if path in entry.fields:
                conflicts.append(Conflict(entry, path))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for c in conflicts:
        c.entry.fields.discard(c.path)

    # Fields this manager stops applying go away unless somebody else still owns them.
    owned_by_others: set[FieldPath] = set().union(*(e.fields for e in others)) if others else set()
    dropped = (previous.fields if previous else set()) - applied_set - owned_by_others
    # Whole items first: their fields then need no removal of their own (and the key stays).
    for path in sorted(dropped, key=len):
        if _is_container_path(path) and any(
            p[: len(path)] == path for p in owned_by_others if len(p) > len(path)
        ):
            continue  # another manager still owns part of this item
        if _delete_at(base, path):
            _prune_empty_parents(base, path)
    for entry in others:
        entry.fields -= dropped

    merged = _merge(base, config, (), types)
    if not base:
        merged = _drop_nulls(config)
    result_entries = others
    unchanged = previous is not None and previous.fields == applied_set and merged == (live or {})
    mine = Entry(
        me.manager,
        "Apply",
        me.api_version,
        applied_set,
        me.subresource,
        previous.time if unchanged and previous is not None else me.time,
    )
    # Keep the entry's position so that a no-op apply leaves managedFields byte-identical.
    position = next((i for i, e in enumerate(entries) if e.same_slot(me)), None)
    ordered = [e for e in entries if not e.same_slot(me)]
    if position is None:
        ordered.append(mine)
    else:
        ordered.insert(position, mine)
    result_entries = [e for e in ordered if e.fields]
    return merged, result_entries


def _prune_empty_parents(obj: dict[str, Any], path: FieldPath) -> None:
    """After a removal, drop the maps and lists it left empty, like structured-merge-diff's
    removing walker (never top-level sections, never list items themselves)."""
    for depth in range(len(path) - 1, 1, -1):
        parent_path = path[:depth]
        if not parent_path[-1].startswith("f:"):
            return
        value = value_at(obj, parent_path)
        if isinstance(value, (dict, list)) and not value:
            _delete_at(obj, parent_path)
        else:
            return


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"
"""The field manager whose server-side applies upgrade client-side applied objects (kubectl's
default for ``apply --server-side``); any other manager opts out, as on a real server."""


def _last_applied(obj: Mapping[str, Any] | None) -> str:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(LAST_APPLIED)
    return value if isinstance(value, str) else ""


def allowed_by_last_applied(
    live: Mapping[str, Any], types: TypeOracle, *, part: str
) -> set[FieldPath]:
    """Fields of the last-applied annotation whose live value is still the recorded one."""
    try:
        recorded = json.loads(_last_applied(live) or "null")
    except ValueError:
        return set()
    if not isinstance(recorded, dict):
        return set()
    return {
        path
        for path in field_set(strip_server_fields(recorded), types, part=part)
        if has_value(value_at(live, path)) and value_at(live, path) == value_at(recorded, path)
    }


def apply_upgrading_client_side(
    live: Mapping[str, Any] | None,
    applied: Mapping[str, Any],
    entries: list[Entry],
    me: Entry,
    types: TypeOracle,
    *,
    force: bool,
    part: str,
) -> tuple[dict[str, Any], list[Entry]]:
    """:func:`apply`, with the client-side to server-side apply upgrade of ``kubectl``."""
    try:
        merged, result = apply(live, applied, entries, me, types, force=force, part=part)
    except ApplyConflict as exc:
        if me.manager != KUBECTL or live is None or not _last_applied(live):
            raise
        allowed = allowed_by_last_applied(live, types, part=part)
        remaining = [c for c in exc.conflicts if c.path not in allowed]
        if remaining:
            raise ApplyConflict(remaining) from None
        merged, result = apply(live, applied, entries, me, types, force=True, part=part)
    if me.manager == KUBECTL and _last_applied(live):
        config = copy.deepcopy(dict(applied))
        annotations = (config.get("metadata") or {}).get("annotations") or {}
        annotations.pop(LAST_APPLIED, None)
        if not annotations and isinstance(config.get("metadata"), dict):
            config["metadata"].pop("annotations", None)
        merged.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = (
            json.dumps(config, separators=(",", ":")) + "\n"
        )
    return merged, result
