"""ServiceLevelObjective handlers: parse the spec, build the PrometheusRule and the dashboard,
converge them, report the rule set in status. Same shape as the MirageService handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from mirage_operator.api.slo import ServiceLevelObjectiveSpec
from mirage_operator.api.validation import check_admitted
from mirage_operator.handlers import common
from mirage_operator.handlers.common import now
from mirage_operator.handlers.reconciler import Reconciler
from mirage_operator.k8s import resources
from mirage_operator.k8s.children import converge_children, observe_children
from mirage_operator.render.slo import (
    CHILD_KINDS,
    build_slo_children,
    build_slo_status,
    rules_unavailable_status,
)

# Without prometheus-operator there is nothing to retry quickly for.
UNAVAILABLE_RETRY_DELAY = 60.0


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


class SLOReconciler(Reconciler):
    """Level-based reconciliation of one ServiceLevelObjective at a time."""

    kind = "ServiceLevelObjective"
    resource = resources.SLO
    status_resource = resources.SLO_STATUS
    child_kinds = CHILD_KINDS

    async def reconcile(self, body: Mapping[str, Any], logger: kopf.Logger) -> float | None:
        """Bring the PrometheusRule and dashboard of ``body`` to their desired state."""
        slo = ServiceLevelObjectiveSpec.from_spec(check_admitted(body)["spec"])
        config, kube = self.context.config, self.context.kube.client
        meta = body["metadata"]
        name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 1)
        old_status = self.last_status(body)
        desired = build_slo_children(
            name=name, namespace=namespace, slo=slo, config=config, owner=body
        )
        # A rule name in status means the children existed after the last successful sync, so
        # one found missing or changed now is drift.
        known = {_key(d) for d in desired} if old_status.get("ruleName") else set()
        result = await converge_children(
            kube,
            owner=body,
            desired=desired,
            observed=observe_children(self.context.children, owner=body),
            field_manager=config.field_manager,
            known=known,
            index=self.context.children,
        )
        unserved = [
            e for e in result.failed.values() if e.status == 404 and "PrometheusRule" in str(e)
        ]
        if unserved:
            error = unserved[0]
            # The PrometheusRule resource is not served: say so, and retry slowly.
            message = (
                "monitoring.coreos.com/v1 PrometheusRule is not served by this cluster; "
                f"install prometheus-operator ({error})"
            )
            status = rules_unavailable_status(
                generation=generation, old_status=old_status, message=message, now=now()
            )
            if await self.write_status(body, status):
                common.post_event(body, "PrometheusRuleUnavailable", message, warning=True)
            logger.warning("%s; retrying in %.0fs", message, UNAVAILABLE_RETRY_DELAY)
            return UNAVAILABLE_RETRY_DELAY
        common.post_sync_events(body, result)
        result.raise_failure()
        status = build_slo_status(
            generation=generation, old_status=old_status, rule=desired[0], now=now()
        )
        await self.write_status(body, status)
        logger.debug("reconciled: %d applied, %d deleted", len(result.applied), len(result.deleted))
        return None
