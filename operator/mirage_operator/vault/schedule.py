"""When a VaultSecret's reconcile must read Vault, and when it should run again: pure decisions.

Reading Vault is the expensive, audited step (and, for the database engine, creates a database
user), so a reconcile reads only for a reason: the Secret was never synced, the spec changed,
a new force-sync value, the Secret no longer holds the synced data (deleted or edited), the
last read failed, the refresh interval has passed, or — once per operator process — to catch
changes made while the operator was down. Everything else is checked against the live Secret
and the HMAC in status, without Vault. Which reasons apply to an engine is its source's
decision (:mod:`mirage_operator.handlers.vaultsecret.sources`).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORCE_SYNC_ANNOTATION = "mirage.dev/force-sync"
"""Set to any new value to make the operator read Vault once more."""

BACKOFF_MIN = 5.0
BACKOFF_MAX = 60.0
"""Retry delays after a failed sync grow from ``BACKOFF_MIN`` to ``BACKOFF_MAX`` seconds."""

MIN_WAIT = 1.0
"""Shortest wait between two scheduled reconciles of one object (events still wake it)."""

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(epoch: float) -> str:
    """``epoch`` as a metav1.Time string (whole seconds, UTC)."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime(_TIME_FORMAT)


def parse_time(text: str | None) -> float | None:
    """A metav1.Time string as epoch seconds; ``None`` when absent or malformed."""
    if not text:
        return None
    try:
        parsed = datetime.datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        return None
    return parsed.replace(tzinfo=datetime.UTC).timestamp()


def _synced_ok(status: Mapping[str, Any]) -> bool:
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Synced":
            return bool(cond.get("status") == "True")
    return False


@dataclass(frozen=True)
class Facts:
    """What a reconcile knows when it decides whether to read Vault."""

    generation: int
    force_sync: str | None
    """The force-sync annotation's value, if set."""
    status: Mapping[str, Any]
    live_mac: str | None
    """HMAC of the live Secret's data (``None``: there is no Secret)."""
    first_check: bool
    """The first reconcile of the object in this operator process."""
    synced_at: float | None
    """When Vault was last read successfully."""
    refresh_interval: float
    """``spec.refreshInterval`` (or the operator's default), in seconds."""
    now: float


def data_reasons(facts: Facts) -> list[str]:
    """Why this reconcile needs Vault's data anew, whatever the engine: the Secret was never
    synced, the spec changed, a new force-sync value, or the Secret no longer holds the synced
    data (deleted or edited)."""
    reasons = []
    synced_mac = facts.status.get("secretMAC")
    if not synced_mac:
        reasons.append("never")
    if facts.status.get("observedGeneration") != facts.generation:
        reasons.append("spec")
    if facts.force_sync is not None and facts.force_sync != facts.status.get("lastForceSync"):
        reasons.append("force")
    if synced_mac and facts.live_mac != synced_mac:
        reasons.append("drift")
    return reasons


def refresh_reasons(facts: Facts) -> list[str]:
    """Why a source read on a clock reads again: the last read failed, the refresh interval
    has passed, or — the first reconcile of the object in this process — to catch changes
    made while the operator was down."""
    reasons = []
    if facts.status.get("secretMAC") and not _synced_ok(facts.status):
        reasons.append("failed")
    if facts.refresh_interval > 0:
        if facts.first_check:
            reasons.append("resume")
        if facts.synced_at is not None and facts.now >= facts.synced_at + facts.refresh_interval:
            reasons.append("refresh")
    return reasons


def next_run_in(
    *,
    refresh_interval: float,
    synced_at: float | None,
    lease_check_at: float | None,
    resync_interval: float,
    now: float,
) -> float:
    """Seconds until the next reconcile: the refresh, the lease's (or its token's) renewal, or
    the level-based resync that catches drift a missed watch event would hide. Never less
    than :data:`MIN_WAIT`: a due time a rounding error in the future must not spin the loop."""
    due = now + resync_interval
    if refresh_interval > 0 and synced_at is not None:
        due = min(due, synced_at + refresh_interval)
    if lease_check_at is not None:
        due = min(due, lease_check_at)
    return max(due - now, MIN_WAIT)


def retry_delay(failures: int, jitter: float) -> float:
    """Seconds before retrying after ``failures`` failed syncs in a row: doubling from
    :data:`BACKOFF_MIN` to :data:`BACKOFF_MAX`, spread over the top fifth by ``jitter`` (0-1)
    so that many objects failing together do not retry together."""
    ceiling = min(BACKOFF_MAX, BACKOFF_MIN * math.pow(2, max(failures - 1, 0)))
    return ceiling * (0.8 + 0.2 * jitter)
