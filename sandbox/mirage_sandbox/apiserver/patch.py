"""The three classic PATCH formats: JSON merge patch, JSON patch and strategic merge patch.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): maps merge, ``null`` deletes,
  lists are replaced whole.
- JSON patch (RFC 6902, ``application/json-patch+json``): ``add``/``remove``/``replace``/
  ``move``/``copy``/``test`` operations on JSON pointers; a failed ``test`` is a 422.
- Strategic merge patch (``application/strategic-merge-patch+json``, built-ins only): like a
  merge patch, but lists with a merge key merge item by item, and the ``$patch``,
  ``$retainKeys``, ``$deleteFromPrimitiveList/…`` and ``$setElementOrder/…`` directives work.
Server-side apply is elsewhere (:mod:`.apply`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mirage_sandbox.apiserver.fieldtypes import Path, TypeOracle, item_key


class PatchError(Exception):
    """A patch cannot be applied; the message says why (the server answers 422)."""


# -- JSON merge patch ------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch, returning a new value."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- JSON patch ------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:  # noqa: S105 - the JSON pointer "end of list" token
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid list index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"list index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"doc is missing path: {path!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: {path!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, allow_end=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return copy.deepcopy(value)
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}")
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, allow_end=False)] = copy.deepcopy(value)
        else:
            parent.insert(_index(parent, last, allow_end=True), copy.deepcopy(value))
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch, returning a new value."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, Mapping) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind in {"add", "replace", "test"} and "value" not in op:
            raise PatchError(f"missing value in {kind} operation")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, op["value"], replace=True)
        elif kind in {"move", "copy"}:
            value = _get(doc, op["from"])
            if kind == "move":
                _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                actual = _get(doc, path)
            except PatchError as exc:
                raise PatchError(f"testing value {path} failed: {exc}") from None
            if actual != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected operation {kind!r}")
    return doc


# -- strategic merge patch -------------------------------------------------------------------

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target: Any, patch: Any, types: TypeOracle) -> Any:
    """Apply a strategic merge patch using ``types`` for the list merge keys."""
    return _smp_map(target, patch, types, ())


def _smp_map(target: Any, patch: Any, types: TypeOracle, path: Path) -> Any:
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    clean = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace" or types.atomic_map(path):
        return copy.deepcopy(clean)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in clean.items():
        sub = (*path, key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _smp_list(result.get(key), value, types, sub)
        elif isinstance(value, Mapping):
            merged = _smp_map(result.get(key), value, types, sub)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
        elif key.startswith(_ORDER):
            field = key[len(_ORDER) :]
            if isinstance(result.get(field), list):
                result[field] = _reorder(result[field], value, types, (*path, field))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _reorder(items: list[Any], order: list[Any], types: TypeOracle, path: Path) -> list[Any]:
    list_type = types.list_type(path)

    def ident(item: Any) -> Any:
        if list_type.kind == "map":
            return repr(sorted((item_key(item, list_type.keys[:1]) or {}).items()))
        return repr(item)

    wanted = [ident(o) for o in order]
    ranked = sorted(
        enumerate(items),
        key=lambda pair: (
            wanted.index(ident(pair[1])) if ident(pair[1]) in wanted else len(wanted),
            pair[0],
        ),
    )
    return [item for _, item in ranked]


def _smp_list(target: Any, patch: list[Any], types: TypeOracle, path: Path) -> list[Any]:
    current = copy.deepcopy(target) if isinstance(target, list) else []
    if any(isinstance(i, Mapping) and i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, Mapping) and "$patch" in i)]
    list_type = types.list_type(path)
    if list_type.kind == "set":
        for value in patch:
            if value not in current:
                current.append(copy.deepcopy(value))
        return current
    if list_type.kind != "map":
        return [copy.deepcopy(i) for i in patch]
    merge_key = list_type.keys[:1]
    for item in patch:
        key = item_key(item, merge_key)
        if key is None:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {merge_key[0]}")
        position = next(
            (i for i, existing in enumerate(current) if item_key(existing, merge_key) == key), None
        )
        if isinstance(item, Mapping) and item.get("$patch") == "delete":
            if position is not None:
                current.pop(position)
            continue
        if position is None:
            current.append(_smp_map(None, item, types, (*path, "*")))
        else:
            current[position] = _smp_map(current[position], item, types, (*path, "*"))
    return current
