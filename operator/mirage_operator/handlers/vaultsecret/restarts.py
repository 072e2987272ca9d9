"""``spec.rolloutRestartTargets``: when the Secret's data changed (its HMAC did), each target
workload's pod template gets an annotation for this VaultSecret set to the new HMAC, which
rolls its pods (docs/adr/0063). The annotation's name and patch are pure builders in
:mod:`mirage_operator.render.vaultsecret`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirage_operator import metrics
from mirage_operator.api.vaultsecret import RestartTarget
from mirage_operator.handlers import common
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient
from mirage_operator.render.vaultsecret import restart_done, restart_patch


async def restart_targets(
    kube: KubeClient, body: Mapping[str, Any], targets: tuple[RestartTarget, ...], mac: str
) -> None:
    """Set each target's pod-template annotation for this VaultSecret to ``mac`` (a target
    that already carries it is left alone; a missing one is reported in an Event)."""
    meta = body["metadata"]
    restarted, missing = [], []
    for target in targets:
        resource = resources.for_kind("apps/v1", target.kind)
        workload = await kube.get(resource, namespace=meta["namespace"], name=target.name)
        if workload is None:
            missing.append(f"{target.kind}/{target.name}")
            continue
        if restart_done(workload, vault_secret=meta["name"], mac=mac):
            continue
        await kube.merge_patch(
            resource,
            namespace=meta["namespace"],
            name=target.name,
            patch=restart_patch(vault_secret=meta["name"], mac=mac),
        )
        restarted.append(f"{target.kind}/{target.name}")
        metrics.ROLLOUT_RESTARTS.labels(kind=target.kind).inc()
    if restarted:
        common.post_event(
            body, "RolloutRestarted", "secret data changed; restarted " + ", ".join(restarted)
        )
    if missing:
        common.post_event(
            body,
            "RestartTargetMissing",
            "secret data changed; not found: " + ", ".join(missing),
            warning=True,
        )
