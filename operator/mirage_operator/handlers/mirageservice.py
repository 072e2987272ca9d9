"""MirageService handlers: parse the spec, build the children, converge them, report status."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import kopf

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.names import secret_name
from mirage_operator.api.validation import check_admitted
from mirage_operator.errors import TransientError
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now
from mirage_operator.handlers.context import ObjectKey, OperatorContext
from mirage_operator.handlers.reconciler import Reconciler, key_of
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import Observed, converge_children, observe_children
from mirage_operator.k8s.handover import hand_over
from mirage_operator.k8s.hardening import restore_secure_defaults
from mirage_operator.render.mirageservice import (
    CHILD_KINDS,
    build_children,
    pod_checksum,
)
from mirage_operator.render.status import build_service_status, get_condition

STATUS_DEFERRAL = 2.0
"""Seconds the first status of a new generation may wait for the children just written to
report theirs (docs/adr/0020), unless the only ones missing are custom resources of ours
whose report is certain to come: not held in a failure's backoff
(:meth:`ServiceReconciler._hold_status`)."""
CONTROLLER_DEFERRAL = 30.0
"""Seconds the first status of a new generation may wait for the Deployment controller to
report on the Deployment's generation (``status.observedGeneration``; Kubernetes API
conventions): before it has, a status could only say "not rolled out yet". At a cold start of
1,000 services in one namespace the (emulated) controller-manager's report came more than
``STATUS_DEFERRAL`` after the apply for most services, and each of them wrote a
``ChildNotReady`` status before ``Ready``: 14.9 status-inclusive writes per service against 13
(docs/adr/0020, amendment "the Deployment controller's report"). Bounded, because a cluster
whose controller-manager is down must still get a status."""
SETTLING = frozenset({"Creating", "RollingOut", "ChildNotReady"})
"""Ready reasons of a service on its way to Ready (not of a failure)."""


def secret_state(
    spec: MirageServiceSpec, name: str, observed: Observed
) -> tuple[dict[str, str], list[str]]:
    """(HMAC by secret name, secrets not synced yet) from the live child VaultSecrets."""
    macs, pending = {}, []
    for secret in spec.secrets:
        child = observed.get(("VaultSecret", secret_name(name, secret.name)))
        mac = (child or {}).get("status", {}).get("secretMAC")
        if mac:
            macs[secret.name] = mac
        else:
            pending.append(secret.name)
    return macs, pending


def children_state(observed: Observed) -> tuple[list[str], list[tuple[str, str]]]:
    """(failing, settling) child custom resources: ``Kind/name (reason)`` of those whose Ready
    is not True, ``(kind, name)`` of those that have not reported Ready for their generation
    yet. A parent is not Ready while a child it owns is not."""
    failing: list[str] = []
    settling: list[tuple[str, str]] = []
    for (kind, child_name), child in sorted(observed.items()):
        if kind in ("VaultSecret", "ServiceLevelObjective"):
            ready = get_condition(child, "Ready")
            generation = child["metadata"].get("generation")
            if ready is None or child.get("status", {}).get("observedGeneration") != generation:
                settling.append((kind, child_name))
            elif ready.get("status") != "True":
                failing.append(f"{kind}/{child_name} ({ready.get('reason')})")
    return failing, settling


def unobserved(deployment: Mapping[str, Any] | None) -> bool:
    """Whether the Deployment controller has not reported on ``deployment``'s current
    generation yet (``status.observedGeneration`` behind ``metadata.generation``)."""
    if deployment is None or deployment["metadata"].get("generation") is None:
        return False
    observed = (deployment.get("status") or {}).get("observedGeneration", 0)
    return bool(observed < deployment["metadata"]["generation"])


def is_ready(status: Mapping[str, Any]) -> bool:
    """Whether ``status`` says ``Ready=True``."""
    return (get_condition({"status": status}, "Ready") or {}).get("status") == "True"


class ServiceReconciler(Reconciler):
    """Level-based reconciliation of one MirageService at a time."""

    kind = "MirageService"
    resource = resources.MIRAGE_SERVICE
    status_resource = resources.MIRAGE_SERVICE_STATUS
    child_kinds = CHILD_KINDS

    def __init__(self, context: OperatorContext) -> None:
        super().__init__(context)
        self.settling: dict[ObjectKey, tuple[int, float]] = {}
        """Generation not reported yet → when its first reconcile ran (monotonic seconds)."""

    def _hold_status(
        self,
        key: ObjectKey,
        generation: int,
        old_status: Mapping[str, Any],
        status: Mapping[str, Any],
        failing: list[str],
        *,
        awaited: bool = False,
        deployment_unobserved: bool = False,
    ) -> float | None:
        """``None`` to write ``status`` now; else not to write it, and reconcile again in that
        many seconds (0: at the regular resync). While a generation is only on its way to
        Ready (children just written, a rollout in progress) its status is written once: when
        the children have reported, or after ``STATUS_DEFERRAL`` at the latest — not at each
        step of the rollout (replicas becoming ready one by one), then once more when it is
        Ready or fails.

        ``awaited``: the service would be Ready but for child custom resources of ours whose
        own reconcile is queued or running in this operator's work queue, or not yet queued by
        their watch (not held in a failure's backoff). Their reports will come
        (a child's status change reconciles its owner), so the deferral does not expire: at a
        cold start of thousands a child waits in the queue behind the other services for
        longer than ``STATUS_DEFERRAL``, and a ``Progressing`` status written meanwhile would
        be a second status write (docs/adr/0020, amendment of 2026-12-02). The regular resync
        re-checks, should a report not come.

        ``deployment_unobserved``: the Deployment controller has not reported on the Deployment's
        generation yet; the deferral lasts up to ``CONTROLLER_DEFERRAL`` for it (its status
        event reconciles the service)."""
        ready = get_condition({"status": status}, "Ready") or {}
        if ready.get("status") == "True" or failing or ready.get("reason") not in SETTLING:
            self.settling.pop(key, None)
            return None
        if old_status.get("observedGeneration") == generation:
            self.settling.pop(key, None)
            old_ready = get_condition({"status": old_status}, "Ready") or {}
            return 0.0 if old_ready.get("reason") in SETTLING else None
        seen, since = self.settling.get(key, (None, 0.0))
        clock = time.monotonic()
        if seen != generation:
            self.settling[key] = (generation, clock)
            since = clock
        if awaited:
            return self.resync_delay()
        if deployment_unobserved and clock - since < CONTROLLER_DEFERRAL:
            return min(self.resync_delay(), CONTROLLER_DEFERRAL - (clock - since))
        wait = STATUS_DEFERRAL - (clock - since)
        if wait <= 0:
            self.settling.pop(key, None)
            return None
        return wait

    def forget(self, key: ObjectKey, uid: str) -> None:
        """The object is gone: drop what this process kept of it."""
        super().forget(key, uid)
        self.settling.pop(key, None)

    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> float | None:
        """Bring every child of ``body`` to its desired state and report status."""
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)

        spec = MirageServiceSpec.from_spec(check_admitted(body)["spec"])
        old_status = self.last_status(body)
        observed = observe_children(self.context.children, owner=body)
        macs, pending = secret_state(spec, name, observed)
        desired = build_children(
            name=name, namespace=namespace, spec=spec, config=config, owner=body, secret_macs=macs
        )
        keep = []
        if pending:
            # Pods cannot start without their Secrets: hold the Deployment back (keeping an
            # existing one as it is) until every secret has synced once.
            desired = [d for d in desired if d["kind"] != "Deployment"]
            keep.append(("Deployment", name))
        known = {(c["kind"], c["name"]) for c in old_status.get("children", [])}
        # Fields we stop applying (replicas when autoscaling starts) keep their live value.
        handed = await hand_over(
            kube, desired=desired, observed=observed, field_manager=config.field_manager
        )
        if handed:
            common.post_event(body, "HandedOver", "kept at the live value: " + "; ".join(handed))
        result = await converge_children(
            kube,
            owner=body,
            desired=desired,
            observed=observed,
            field_manager=config.field_manager,
            known=known,
            keep=keep,
            index=self.context.children,
        )
        common.post_sync_events(body, result)
        result.raise_failure()
        deployment = result.live.get(("Deployment", name)) or observed.get(("Deployment", name))
        hardening = await restore_secure_defaults(
            kube,
            before=observed.get(("Deployment", name)),
            after=deployment,
            field_manager=config.field_manager,
        )
        if hardening.reverted:
            common.post_event(body, "InsecureFieldReverted", hardening.message(), warning=True)

        current = {**observed, **result.live}
        children = [
            {"apiVersion": d["apiVersion"], "kind": d["kind"], "name": d["metadata"]["name"]}
            for d in desired
        ]
        failing, settling = children_state(current)
        unreported = [f"{kind}/{child} (Pending)" for kind, child in settling]

        def status_with(problems: list[str]) -> dict[str, Any]:
            return build_service_status(
                generation=generation,
                old_status=old_status,
                deployment=deployment,
                children=children,
                pending_secrets=pending,
                failing_children=problems,
                checksum=pod_checksum(spec=spec, secret_macs=macs),
                now=now(),
            )

        status = status_with(failing + unreported + hardening.unreverted())
        queue = self.context.queue
        # Ready but for child custom resources of ours whose report is certain to come: their
        # reconcile is queued, running, or not yet queued by their watch — anything but a
        # failure's backoff.
        awaited = (
            bool(settling)
            and not failing
            and not any(queue.held((kind, namespace, child)) for kind, child in settling)
            and is_ready(status_with(hardening.unreverted()))
        )
        hold = self._hold_status(
            key_of(body),
            generation,
            old_status,
            status,
            failing,
            awaited=awaited,
            deployment_unobserved=unobserved(deployment),
        )
        if hold:
            return hold
        if hold is None:
            await self.write_status(body, status)
        if hardening.failed:
            # The failure's text replaces Ready's message: it keeps the paths and the reason.
            raise TransientError("; ".join(hardening.unreverted()) + ": not reverted yet")
        logger.debug("reconciled: %d applied, %d deleted", len(result.applied), len(result.deleted))
        return None
