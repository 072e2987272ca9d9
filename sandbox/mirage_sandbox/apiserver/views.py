"""Views of stored objects through a particular resource (group/version).

Objects are stored once per :attr:`ResourceType.storage`; each served version reads and writes
them through a view. Custom resources convert trivially (``conversion: None``: only
``apiVersion`` changes). ``events.k8s.io/v1`` Events are the core ``v1`` Events with renamed
fields, as in the real server.
"""

from __future__ import annotations

import copy
from typing import Any

from mirage_sandbox.apiserver.resources import ResourceType

# events.k8s.io/v1 field -> core/v1 field
_EVENT_FIELDS = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}


def to_view(rt: ResourceType, stored: dict[str, Any]) -> dict[str, Any]:
    """``stored`` as ``rt`` serves it: a new top-level dict sharing nested values with
    ``stored`` (copy first if the result will be mutated)."""
    obj = dict(stored)
    if rt.group == "events.k8s.io":
        for new, old in _EVENT_FIELDS.items():
            if old in obj:
                obj[new] = obj.pop(old)
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    return {"apiVersion": obj.pop("apiVersion"), "kind": obj.pop("kind"), **obj}


def from_view(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """A written object as stored (a new dict)."""
    stored = copy.deepcopy(obj)
    if rt.group == "events.k8s.io":
        for new, old in _EVENT_FIELDS.items():
            if new in stored:
                stored[old] = stored.pop(new)
        stored["apiVersion"] = "v1"
    else:
        stored["apiVersion"] = rt.api_version
    stored["kind"] = rt.kind
    return stored
