"""Pure builders of ``status``: metav1.Condition handling shared by every kind, and the
MirageService status computed from its live children."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TRUE, FALSE = "True", "False"


def condition(
    type_: str, status: bool, reason: str, message: str, *, generation: int | None
) -> dict[str, Any]:
    """A metav1.Condition without ``lastTransitionTime`` (``merge_conditions`` sets it)."""
    result: dict[str, Any] = {
        "type": type_,
        "status": TRUE if status else FALSE,
        "reason": reason,
        "message": message,
    }
    if generation is not None:
        result["observedGeneration"] = generation
    return result


def merge_conditions(
    old: Sequence[Mapping[str, Any]] | None, new: Iterable[Mapping[str, Any]], *, now: str
) -> list[dict[str, Any]]:
    """``new`` conditions, keeping each one's ``lastTransitionTime`` while its status holds."""
    previous = {c.get("type"): c for c in old or ()}
    merged = []
    for cond in new:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        stamp = before.get("lastTransitionTime") if same and before else None
        merged.append({**cond, "lastTransitionTime": stamp or now})
    return merged


def get_condition(obj: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    """The condition ``type_`` of an object's status, if present."""
    for cond in (obj or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def invalid_spec_conditions(
    message: str, *, generation: int | None, reason: str = "InvalidSpec"
) -> list[dict[str, Any]]:
    """Conditions of a resource whose spec cannot be reconciled as written (``reason``:
    ``InvalidSpec``, or a narrower one such as ``ChildNameConflict``)."""
    return [
        condition("Ready", False, reason, message, generation=generation),
        condition("Progressing", False, reason, "fix the spec to continue", generation=generation),
        condition("Degraded", True, reason, message, generation=generation),
    ]


def _deployment_state(deployment: Mapping[str, Any] | None) -> tuple[bool, str, str, bool, str]:
    """(rolled out, reason, message, failed, failure message) of a live Deployment."""
    if deployment is None:
        return False, "Creating", "the Deployment does not exist yet", False, ""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    want = spec.get("replicas", 1)
    generation = deployment.get("metadata", {}).get("generation", 0)
    for cond in status.get("conditions", []) or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, "RolloutFailed", cond.get("message", ""), True, cond.get("message", "")
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == TRUE:
            return False, "ReplicaFailure", cond.get("message", ""), True, cond.get("message", "")
    if status.get("observedGeneration", 0) < generation:
        return (
            False,
            "RollingOut",
            "the Deployment controller has not seen the latest spec",
            False,
            "",
        )
    updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
    if updated < want or ready < want:
        message = f"{ready}/{want} pods ready, {updated}/{want} updated"
        return False, "RollingOut", message, False, ""
    return True, "Available", f"{ready}/{want} pods ready", False, ""


def build_service_status(
    *,
    generation: int,
    old_status: Mapping[str, Any] | None,
    deployment: Mapping[str, Any] | None,
    children: Sequence[Mapping[str, str]],
    pending_secrets: Sequence[str],
    failing_children: Sequence[str],
    checksum: str | None,
    now: str,
) -> dict[str, Any]:
    """The status of a MirageService from its live Deployment and children.

    ``pending_secrets`` are secrets not synced yet (the Deployment waits for them);
    ``failing_children`` are child custom resources whose own Ready condition is False.
    """
    rolled_out, reason, message, failed, failure = _deployment_state(deployment)
    if pending_secrets:
        rolled_out, reason = False, "WaitingForSecrets"
        message = "waiting for Vault secrets to sync: " + ", ".join(pending_secrets)
    degraded_message = failure or (
        "children not ready: " + ", ".join(failing_children)
        if failing_children
        else "all children healthy"
    )
    degraded = failed or bool(failing_children)
    # A failing child (e.g. a VaultSecret that cannot read Vault) makes the service not Ready
    # even when its pods run: they may be serving stale credentials.
    child_trouble = bool(failing_children) and not failed
    ready_reason = "ChildNotReady" if child_trouble else reason
    ready_message = degraded_message if child_trouble else message
    conditions = [
        condition(
            "Ready", rolled_out and not degraded, ready_reason, ready_message, generation=generation
        ),
        condition(
            "Progressing", not rolled_out and not failed, reason, message, generation=generation
        ),
        condition(
            "Degraded",
            degraded,
            "Failing" if degraded else "Healthy",
            degraded_message,
            generation=generation,
        ),
    ]
    old = old_status or {}
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions"), conditions, now=now),
        "children": [dict(c) for c in children],
    }
    dep_status = (deployment or {}).get("status", {})
    for field in ("replicas", "readyReplicas", "updatedReplicas"):
        status[field] = dep_status.get(field, 0)
    if checksum:
        status["secretsChecksum"] = checksum
    return status


def status_differs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing ``new`` would change anything in ``old``."""
    old = old or {}
    return any(old.get(key) != value for key, value in new.items())
