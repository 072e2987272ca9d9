"""Hand a field over before the operator stops applying it, so that its live value is kept.

When an applier stops applying a field that nobody else owns, server-side apply removes it,
and the API server then defaults it: a Deployment's ``spec.replicas`` becomes 1 the moment
autoscaling is enabled, killing pods until the HPA reacts. Kubernetes documents the remedy
("Transferring ownership" in the Server-Side Apply reference): apply the current value with a
hand-over field manager first, then apply without the field. The field then stays as it is
until its new owner (the HPA, through the scale subresource) writes it, and the hand-over
manager's entry disappears by itself (ADR 0081).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mirage_operator.errors import KubernetesAPIError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient

HANDOVER_SUFFIX = "-handover"

FieldPath = tuple[str, ...]

# Fields a builder leaves out on purpose that the API server would default harmfully
# (ADR 0081 has the table of every field a builder stops applying, and why only these).
HANDED_OVER: Mapping[str, tuple[FieldPath, ...]] = {"Deployment": (("spec", "replicas"),)}


def handover_manager(field_manager: str) -> str:
    """The field manager that holds handed-over fields, e.g. ``mirage-operator-handover``."""
    return field_manager + HANDOVER_SUFFIX


def _lookup(obj: Mapping[str, Any] | None, path: FieldPath) -> tuple[bool, Any]:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def applies(live: Mapping[str, Any], field_manager: str, path: FieldPath) -> bool:
    """Whether ``field_manager``'s apply entry in ``live``'s managedFields owns ``path``."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if (
            entry.get("manager") != field_manager
            or entry.get("operation") != "Apply"
            or entry.get("subresource")
        ):
            continue
        found, _ = _lookup(entry.get("fieldsV1"), tuple(f"f:{key}" for key in path))
        if found:
            return True
    return False


def handover_body(
    desired: Mapping[str, Any], live: Mapping[str, Any] | None, *, field_manager: str
) -> dict[str, Any] | None:
    """The apply configuration that hands over what ``desired`` stops setting, or ``None``.

    A field of :data:`HANDED_OVER` is handed over when ``desired`` leaves it out while
    ``field_manager`` applied it before (it owns it in ``live``) — exactly the case where the
    next apply would remove it. The configuration holds the field's current live value (the
    live count, not the spec's), so that applying it changes nothing and cannot conflict.
    """
    if live is None:
        return None
    body: dict[str, Any] = {}
    for path in HANDED_OVER.get(desired["kind"], ()):
        wanted, _ = _lookup(desired, path)
        present, value = _lookup(live, path)
        if wanted or not present or not applies(live, field_manager, path):
            continue
        node = body
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    if not body:
        return None
    meta = desired["metadata"]
    return {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        **body,
    }


async def hand_over(
    kube: KubeClient,
    *,
    desired: Sequence[Mapping[str, Any]],
    observed: Mapping[tuple[str, str], Mapping[str, Any]],
    field_manager: str,
) -> list[str]:
    """Apply :func:`handover_body` for each desired child that needs it; for each, its
    ``Kind/name`` and the fields handed over (``Deployment/api spec.replicas``).

    Must run before the children are applied. The hand-over apply is not forced: a conflict
    means the new owner already took the field, and then there is nothing to hand over.
    """
    handed = []
    for child in desired:
        live = observed.get((child["kind"], child["metadata"]["name"]))
        body = handover_body(child, live, field_manager=field_manager)
        if body is None:
            continue
        try:
            await kube.apply(
                resources.for_kind(body["apiVersion"], body["kind"]),
                body,
                field_manager=handover_manager(field_manager),
                force=False,
            )
        except KubernetesAPIError as exc:
            if exc.status != 409:
                raise
            continue
        fields = [".".join(p) for p in HANDED_OVER[body["kind"]] if _lookup(body, p)[0]]
        handed.append(f"{body['kind']}/{body['metadata']['name']} {', '.join(fields)}")
    return handed
