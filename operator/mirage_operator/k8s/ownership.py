"""Who controls an object: the rule that keeps two owners from writing one child (ADR 0011).

Two custom resources can derive the same child name (MirageService ``shop`` with SLO
``cart-avail`` and ``shop-cart`` with SLO ``avail`` both want ``shop-cart-avail``). The first
owner keeps the child; the second finds it controlled by someone else, writes nothing and
reports the conflict, naming the other owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller owner reference of ``obj`` (``controller: true``), if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences", []) or []:
        if ref.get("controller"):
            return dict(ref)
    return None


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
