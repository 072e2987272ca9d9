"""Restore the secure pod defaults of a live Deployment (ADR 0080).

Server-side apply only restores fields the operator applies; a field another manager added
(``hostNetwork: true``, ``capabilities.add``, a ``hostPath`` volume, a privileged sidecar)
survives every apply. After the children converge, the live Deployment's pod template is
checked with :func:`mirage_operator.render.podsecurity.harden`, and whatever breaks the rules
is reverted by one merge patch under the operator's field manager, guarded by the
``resourceVersion`` that was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mirage_operator import metrics
from mirage_operator.errors import KubernetesAPIError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient
from mirage_operator.render.podsecurity import (
    Violation,
    deployment_revert_patch,
    describe,
    harden,
)


@dataclass
class Hardening:
    """What :func:`restore_secure_defaults` found and did."""

    reverted: list[Violation] = field(default_factory=list)
    """Insecure fields that were live and are reverted now."""
    failed: list[Violation] = field(default_factory=list)
    """Insecure fields still live: the revert was refused (the reason is in ``error``)."""
    error: str = ""
    """Why ``failed`` is not empty: the API status code only (a message could quote values)."""
    name: str = ""
    """The Deployment's name."""

    def message(self) -> str:
        """The ``InsecureFieldReverted`` Event's message: the reverted paths, never values."""
        return f"Deployment/{self.name}: reverted {describe(self.reverted)}"

    def unreverted(self) -> list[str]:
        """The Deployment as a failing child of the MirageService while ``failed`` is set."""
        if not self.failed:
            return []
        return [f"Deployment/{self.name} (InsecureFields: {self.error}: {describe(self.failed)})"]


def insecure_fields(deployment: Mapping[str, Any] | None) -> list[Violation]:
    """The insecure fields of a live Deployment's pod template (none for ``None``)."""
    if deployment is None:
        return []
    return harden((deployment.get("spec") or {}).get("template") or {}).violations


CONFLICT_ATTEMPTS = 3
"""Patches tried when the Deployment changes between read and write (its controller writes
status right after every spec change, so a 409 on the first try is common)."""


async def restore_secure_defaults(
    kube: KubeClient,
    *,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    field_manager: str,
) -> Hardening:
    """Revert the insecure fields of ``after`` (the live Deployment after the apply).

    ``before`` is the Deployment as observed before this reconcile applied anything: its
    insecure fields that the apply already reverted (fields the operator owns, such as
    ``readOnlyRootFilesystem``) count as reverted too. No API call when nothing is insecure.
    The patch is guarded by the ``resourceVersion`` read; on a 409 the Deployment is read
    again and the patch recomputed (:data:`CONFLICT_ATTEMPTS` in all). A refused patch (5xx,
    422, a webhook, conflicts every time) is reported in ``failed``, not raised, so that the
    caller can report it in status first.
    """
    live = after or before
    result = Hardening(name=live["metadata"]["name"] if live else "")
    patched: list[Violation] = []
    current = after
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        if current is None:  # gone: nothing insecure is live
            break
        patch, remaining = deployment_revert_patch(current)
        if not remaining:
            break
        meta = current["metadata"]
        try:
            await kube.merge_patch(
                resources.DEPLOYMENT,
                namespace=meta["namespace"],
                name=meta["name"],
                patch=patch,
                field_manager=field_manager,
            )
        except KubernetesAPIError as exc:
            if exc.status == 409 and attempt < CONFLICT_ATTEMPTS:
                current = await kube.get(
                    resources.DEPLOYMENT, namespace=meta["namespace"], name=meta["name"]
                )
                continue
            result.failed, result.error = remaining, f"the API server answered {exc.status}"
            break
        metrics.DRIFT_CORRECTIONS.labels(kind="Deployment").inc()
        patched = remaining
        break
    fixed_by_apply = [v for v in insecure_fields(before) if v not in result.failed]
    result.reverted = fixed_by_apply + [v for v in patched if v not in fixed_by_apply]
    return result
