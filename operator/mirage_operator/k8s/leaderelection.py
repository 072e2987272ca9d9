"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

- A candidate tries to acquire or renew every ``retry_period`` (jittered up to 1.2x, as
  client-go's ``wait.JitterUntil``). It may take the Lease when it is free (no holder) or when
  its record has not changed for ``lease_duration`` seconds *as observed by this process's
  monotonic clock* — never by comparing ``renewTime`` with the local wall clock, so clock skew
  between nodes cannot make two leaders.
- Every write is a PUT carrying the observed ``resourceVersion``: of two candidates racing for
  the same free Lease, the API server lets one win (409 for the other).
- The leader renews every ``retry_period``; when no renewal succeeded for ``renew_deadline``
  seconds, it is no longer the leader (:attr:`LeaderElector.is_leader` turns false by the
  clock alone, before any callback runs), and ``on_lost`` is called.
- :meth:`LeaderElector.release` (graceful shutdown) empties ``holderIdentity`` so that a
  standby takes over at its next retry instead of after ``lease_duration``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mirage_operator import metrics
from mirage_operator.errors import KubernetesAPIError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2
"""client-go's ``JitterFactor``: each wait is ``retry_period * (1 + random() * 0.2)``."""


def default_identity() -> str:
    """``<host name>_<random>``: the pod's name, unique even if a pod name is reused."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _micro_time(epoch: float) -> str:
    # metav1.MicroTime: RFC 3339 with microseconds.
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ElectionSettings:
    """Where the Lease is and how long its terms are (seconds)."""

    namespace: str
    name: str
    identity: str
    lease_duration: float
    renew_deadline: float
    retry_period: float


class LeaderElector:
    """One candidate for one Lease."""

    def __init__(
        self,
        client: KubeClient,
        settings: ElectionSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self.settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._observed: Mapping[str, Any] | None = None
        self._observed_spec: Mapping[str, Any] | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        self.acquired = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        """True while the last successful acquire or renewal is younger than ``renew_deadline``.

        Checked before every write: it turns false by the clock alone, so a leader cut off
        from the API server stops writing even if its renew loop has not noticed yet."""
        return (
            self._renewed_at is not None
            and self._clock() - self._renewed_at < self.settings.renew_deadline
        )

    def _wait(self) -> float:
        return self.settings.retry_period * (1 + self._jitter() * (JITTER_FACTOR - 1))

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease."""
        log.info(
            "Waiting to lead: Lease %s/%s as %s",
            self.settings.namespace,
            self.settings.name,
            self.settings.identity,
        )
        # Polling the Lease is the protocol: nothing announces that a holder went away.
        while True:
            if await self.try_acquire_or_renew():
                break
            await asyncio.sleep(self._wait())
        log.info("Became the leader (Lease %s/%s)", self.settings.namespace, self.settings.name)
        metrics.LEADER.set(1)
        self.acquired.set()

    async def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew until a renewal deadline passes; then call ``on_lost`` and return."""
        while True:
            await asyncio.sleep(self._wait())
            if not self.is_leader:
                break
            # One attempt may not outlive the deadline: a hung request is a lost renewal.
            assert self._renewed_at is not None
            remaining = self.settings.renew_deadline - (self._clock() - self._renewed_at)
            try:
                await asyncio.wait_for(self.try_acquire_or_renew(), timeout=max(remaining, 0.0))
            except TimeoutError:
                log.warning("Renewing the Lease timed out")
            if not self.is_leader:
                break
        metrics.LEADER.set(0)
        log.error(
            "Lost the Lease %s/%s: no renewal for %ss; stopping all writes",
            self.settings.namespace,
            self.settings.name,
            self.settings.renew_deadline,
        )
        on_lost()

    async def try_acquire_or_renew(self) -> bool:
        """One attempt, as client-go's ``tryAcquireOrRenew``; True when this candidate leads."""
        s = self.settings
        now = self._wall_clock()
        # client-go's fast path: the leader renews the Lease it last wrote, without a GET
        # (a 409 means someone else wrote it: then read it as a candidate would).
        if self.is_leader and self._observed is not None and await self._renew_observed(now):
            return True
        try:
            current = await self._client.get(resources.LEASE, namespace=s.namespace, name=s.name)
            if current is None:
                spec = self._spec(now, transitions=0, acquired=now)
                created = await self._client.create(
                    resources.LEASE,
                    namespace=s.namespace,
                    body={
                        "apiVersion": resources.LEASE.api_version,
                        "kind": resources.LEASE.kind,
                        "metadata": {"name": s.name, "namespace": s.namespace},
                        "spec": spec,
                    },
                )
                self._observe(created)
                return self._won()
            self._observe(current)
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            mine = holder == s.identity
            expired = self._clock() - self._observed_at >= float(
                spec.get("leaseDurationSeconds") or s.lease_duration
            )
            if holder and not mine and not expired:
                self._renewed_at = None
                return False
            transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
            acquired = now if not mine else None
            body = {**current, "spec": self._spec(now, transitions=transitions, acquired=acquired)}
            if mine and spec.get("acquireTime"):
                body["spec"]["acquireTime"] = spec["acquireTime"]
            updated = await self._client.replace(
                resources.LEASE, namespace=s.namespace, name=s.name, body=body
            )
        except KubernetesAPIError as exc:
            # 409: another candidate wrote first; anything else: try again next period.
            metrics.LEADER_ELECTION_ERRORS.labels(code=str(exc.status)).inc()
            log.info("Lease %s/%s: %s", s.namespace, s.name, exc)
            return self.is_leader
        self._observe(updated)
        return self._won()

    async def _renew_observed(self, now: float) -> bool:
        assert self._observed is not None
        s = self.settings
        spec = {**(self._observed.get("spec") or {}), "renewTime": _micro_time(now)}
        try:
            updated = await self._client.replace(
                resources.LEASE,
                namespace=s.namespace,
                name=s.name,
                body={**self._observed, "spec": spec},
            )
        except KubernetesAPIError as exc:
            metrics.LEADER_ELECTION_ERRORS.labels(code=str(exc.status)).inc()
            return False
        self._observe(updated)
        self._won()
        return True

    def _won(self) -> bool:
        self._renewed_at = self._clock()
        return True

    def _spec(self, now: float, *, transitions: int, acquired: float | None) -> dict[str, Any]:
        s = self.settings
        spec: dict[str, Any] = {
            "holderIdentity": s.identity,
            "leaseDurationSeconds": max(int(s.lease_duration), 1),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }
        if acquired is not None:
            spec["acquireTime"] = _micro_time(acquired)
        return spec

    def _observe(self, lease: Mapping[str, Any]) -> None:
        # Expiry counts from when *this* process last saw the record change (client-go's
        # observedTime), so the holder's clock never matters.
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observed_spec = dict(spec)
            self._observed_at = self._clock()
        self._observed = lease

    async def close(self) -> None:
        """Close the elector's HTTP session."""
        await self._client.close()

    async def release(self) -> bool:
        """Give the Lease up (graceful shutdown), if this candidate holds it. A standby takes
        over at its next retry."""
        if not self.is_leader or self._observed is None:
            return False
        self._renewed_at = None  # no write of ours after this point
        metrics.LEADER.set(0)
        s = self.settings
        observed = self._observed
        for attempt in range(2):
            spec = dict(observed.get("spec") or {})
            spec.update(
                holderIdentity="",
                leaseDurationSeconds=1,
                renewTime=_micro_time(self._wall_clock()),
            )
            try:
                await self._client.replace(
                    resources.LEASE,
                    namespace=s.namespace,
                    name=s.name,
                    body={**observed, "spec": spec},
                )
            except KubernetesAPIError as exc:
                # 409: a renewal cut short by the shutdown was written all the same; the
                # Lease is still ours if it names us.
                current = None
                if exc.status == 409 and attempt == 0:
                    current = await self._client.get(
                        resources.LEASE, namespace=s.namespace, name=s.name
                    )
                if current and (current.get("spec") or {}).get("holderIdentity") == s.identity:
                    observed = current
                    continue
                log.warning("Could not release the Lease %s/%s: %s", s.namespace, s.name, exc)
                return False
            break
        log.info("Released the Lease %s/%s", s.namespace, s.name)
        return True
