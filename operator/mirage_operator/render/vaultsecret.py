"""Pure builders of what a VaultSecret's reconciliation writes besides the Secret: its status,
and the pod-template annotation that restarts its ``rolloutRestartTargets``.

Status and annotations carry the data's HMAC, Vault versions, lease IDs and times — never a
value. Condition messages come from the operator's own errors, which name paths and keys only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirage_operator.durations import format_interval
from mirage_operator.render.status import condition, merge_conditions

RESTART_ANNOTATION_PREFIX = "secret-mac.mirage.dev/"
"""Prefix of the pod-template annotation (one per VaultSecret) that restarts a target."""

_MAX_ANNOTATION_NAME = 63


def restart_annotation(vault_secret: str) -> str:
    """The pod-template annotation the VaultSecret ``vault_secret`` sets on its targets.

    The part after the prefix is limited to 63 characters; a longer name is cut and given a
    hash suffix so that two long names never share an annotation.
    """
    if len(vault_secret) <= _MAX_ANNOTATION_NAME:
        return RESTART_ANNOTATION_PREFIX + vault_secret
    digest = hashlib.sha256(vault_secret.encode()).hexdigest()[:10]
    return f"{RESTART_ANNOTATION_PREFIX}{vault_secret[: _MAX_ANNOTATION_NAME - 11]}-{digest}"


def restart_patch(*, vault_secret: str, mac: str) -> dict[str, Any]:
    """A merge patch setting a workload's pod-template annotation for ``vault_secret`` to
    ``mac``: a new value rolls the pods, the same value changes nothing."""
    annotations = {restart_annotation(vault_secret): mac}
    return {"spec": {"template": {"metadata": {"annotations": annotations}}}}


def restart_done(workload: Mapping[str, Any], *, vault_secret: str, mac: str) -> bool:
    """Whether ``workload``'s pod template already carries ``mac`` for ``vault_secret``."""
    template = workload.get("spec", {}).get("template", {})
    annotations = template.get("metadata", {}).get("annotations") or {}
    return bool(annotations.get(restart_annotation(vault_secret)) == mac)


@dataclass(frozen=True)
class LeaseStatus:
    """What status shows of a database lease: an identifier and times, not a credential."""

    lease_id: str
    duration: int
    """Seconds granted by the last issue or renewal."""
    expiry: str
    """metav1.Time when the lease ends unless renewed."""


def synced_status(
    *,
    generation: int,
    old_status: Mapping[str, Any],
    secret_name: str,
    mac: str,
    source: str,
    last_sync: str | None,
    vault_version: int | None,
    lease: LeaseStatus | None,
    force_sync: str | None,
    refresh_interval: float,
    now: str,
) -> dict[str, Any]:
    """The status of a VaultSecret whose Secret holds the current Vault data.

    ``source`` describes the Vault path (no values); ``last_sync`` is when Vault was last read
    successfully; ``force_sync`` the force-sync annotation value acted on, if any;
    ``refresh_interval`` the seconds between reads in effect (the spec's, or the operator's
    setting). Fields that no longer apply are ``None`` so that a merge patch removes them.
    """
    conditions = [
        condition(
            "Ready",
            True,
            "SecretSynced",
            f"Secret {secret_name} holds the current data of Vault {source}",
            generation=generation,
        ),
        condition("Synced", True, "VaultRead", f"read Vault {source}", generation=generation),
    ]
    return {
        "observedGeneration": generation,
        "secretName": secret_name,
        "secretMAC": mac,
        "lastSyncTime": last_sync,
        "vaultVersion": vault_version,
        "leaseID": lease.lease_id if lease else None,
        "leaseDuration": lease.duration if lease else None,
        "leaseExpiry": lease.expiry if lease else None,
        "lastForceSync": force_sync if force_sync is not None else old_status.get("lastForceSync"),
        "refreshInterval": format_interval(refresh_interval),
        "conditions": merge_conditions(old_status.get("conditions"), conditions, now=now),
    }


def failed_status(
    *,
    generation: int,
    old_status: Mapping[str, Any],
    reason: str,
    message: str,
    invalid_spec: bool,
    now: str,
) -> dict[str, Any]:
    """The status of a VaultSecret whose last sync failed; everything else stays as it was.

    ``observedGeneration`` moves only for an invalid spec (that generation has been handled:
    nothing will sync until the spec changes); a transient failure leaves it behind, so the
    change it could not apply is retried.
    """
    kept = (
        f"; Secret {old_status['secretName']} keeps its last good data"
        if old_status.get("secretMAC") and old_status.get("secretName")
        else ""
    )
    conditions = [
        condition("Ready", False, reason, message + kept, generation=generation),
        condition("Synced", False, reason, message, generation=generation),
    ]
    status: dict[str, Any] = {
        "conditions": merge_conditions(old_status.get("conditions"), conditions, now=now)
    }
    if invalid_spec:
        status["observedGeneration"] = generation
    return status
