"""Whose object is it: the rules for writing into an object that already exists
(docs/adr/0069, docs/adr/0011).

Mirage writes an object only when it created it — the object carries a controller owner
reference to the Mirage resource — or when the user opted in on that resource (a
VaultSecret's ``destination.overwrite``). An object of the same name that someone else made
(by hand, by Helm, by another controller) is never taken over, labelled or deleted: the
owner reports it and waits. Two custom resources can also derive the same child name
(MirageService ``shop`` with SLO ``cart-avail`` and ``shop-cart`` with SLO ``avail`` both
want ``shop-cart-avail``): the first owner keeps the child, the second writes nothing and
reports the conflict, naming the other owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ADOPTED_BY_ANNOTATION = "mirage.dev/adopted-by"
"""On a Secret a VaultSecret writes into without owning it (``destination.overwrite``): the
VaultSecret's name. No owner reference is added, so deleting the VaultSecret leaves it."""


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller owner reference of ``obj`` (``controller: true``), or ``None``."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def foreign_owner(live: Mapping[str, Any], owner: Mapping[str, Any]) -> str | None:
    """Why the existing object ``live`` is not ``owner``'s to write (``"Kind/name ..."``, for
    a condition or an Event), or ``None`` when ``owner`` controls it."""
    ref = controller_of(live)
    what = f"{live.get('kind', 'object')}/{live.get('metadata', {}).get('name', '')}"
    if ref is None:
        return f"{what} exists and was not created by Mirage (it has no controller owner)"
    if ref.get("uid") == owner["metadata"]["uid"]:
        return None
    return f"{what} is controlled by {ref.get('kind')}/{ref.get('name')}"


def conflicting_owner(live: Mapping[str, Any] | None, owner: Mapping[str, Any]) -> str | None:
    """``"Kind name (uid U)"`` of the controller of ``live`` when that is not ``owner`` (a
    custom resource body); ``None`` when ``live`` does not exist, has no controller (the
    operator may adopt it), or ``owner`` controls it."""
    if live is None:
        return None
    ref = controller_of(live)
    if ref is None or ref.get("uid") == owner["metadata"].get("uid"):
        return None
    return f"{ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"
