"""MirageService handlers: parse the spec, build the children, converge them, report status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.validation import admit
from mirage_operator.errors import TransientError
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.handlers.reconciler import Reconciler, register_reconciler
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import Observed, converge_children, observe_children
from mirage_operator.k8s.handover import hand_over
from mirage_operator.k8s.hardening import restore_secure_defaults
from mirage_operator.render.mirageservice import (
    CHILD_KINDS,
    build_children,
    kinds_to_observe,
    pod_checksum,
)
from mirage_operator.render.names import secret_name
from mirage_operator.render.status import build_service_status, get_condition


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


def failing_children(observed: Observed) -> list[str]:
    """Child custom resources whose own Ready condition is False."""
    failing = []
    for (kind, child_name), child in sorted(observed.items()):
        if kind in ("VaultSecret", "ServiceLevelObjective"):
            ready = get_condition(child, "Ready")
            if ready is not None and ready.get("status") == "False":
                failing.append(f"{kind}/{child_name} ({ready.get('reason')})")
    return failing


class ServiceReconciler(Reconciler):
    """Level-based reconciliation of one MirageService at a time."""

    kind = "MirageService"
    resource = resources.MIRAGE_SERVICE
    status_resource = resources.MIRAGE_SERVICE_STATUS
    child_kinds = CHILD_KINDS

    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> None:
        """Bring every child of ``body`` to its desired state and report status."""
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
        old_status = body.get("status") or {}

        spec = MirageServiceSpec.from_spec(admit(body)["spec"])
        known = {(c["kind"], c["name"]) for c in old_status.get("children", [])}
        wanted = build_children(
            name=name, namespace=namespace, spec=spec, config=config, owner=body, secret_macs=None
        )
        kinds = kinds_to_observe(desired=wanted, known_kinds={kind for kind, _ in known})
        observed = await observe_children(kube, owner=body, kinds=kinds)
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
        )
        common.post_sync_events(body, result)
        deployment = result.live.get(("Deployment", name)) or observed.get(("Deployment", name))
        hardening = await restore_secure_defaults(
            kube,
            before=observed.get(("Deployment", name)),
            after=deployment,
            field_manager=config.field_manager,
        )
        if hardening.reverted:
            common.post_event(body, "InsecureFieldReverted", hardening.message(), warning=True)

        children = [
            {"apiVersion": d["apiVersion"], "kind": d["kind"], "name": d["metadata"]["name"]}
            for d in desired
        ]
        status = build_service_status(
            generation=generation,
            old_status=old_status,
            deployment=deployment,
            children=children,
            pending_secrets=pending,
            failing_children=failing_children(observed) + hardening.unreverted(),
            checksum=pod_checksum(spec=spec, secret_macs=macs),
            now=now(),
        )
        await self.write_status(body, status)
        if hardening.failed:
            raise TransientError(f"Deployment/{name}: insecure fields not reverted yet")
        logger.debug("reconciled: %d applied, %d deleted", len(result.applied), len(result.deleted))


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> ServiceReconciler:
    """Register the MirageService handlers; return the reconciler they share."""
    reconciler = ServiceReconciler(context)
    register_reconciler(registry, reconciler)
    return reconciler
