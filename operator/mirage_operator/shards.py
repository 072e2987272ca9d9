"""Namespaces no shard owns: found and reported, never silently left alone (docs/adr/0112).

Shards are operator Deployments with disjoint ``MIRAGE_NAMESPACES``; one of them is also told
every shard's namespaces (``MIRAGE_SHARD_NAMESPACES``). Its leader lists the Mirage kinds
cluster-wide once per resync interval and reports each namespace holding Mirage resources
that is not in that set: a warning when it appears, and ``mirage_unowned_namespace`` = 1
while it lasts.
"""

from __future__ import annotations

import asyncio
import logging

from mirage_operator import metrics
from mirage_operator.config import Config
from mirage_operator.errors import KubernetesAPIError
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient

log = logging.getLogger(__name__)

SURVEYED = (resources.MIRAGE_SERVICE, resources.VAULT_SECRET, resources.SLO)


async def unowned_namespaces(client: KubeClient, owned: frozenset[str]) -> set[str]:
    """Namespaces holding a Mirage resource that are not in ``owned``."""
    found: set[str] = set()
    for resource in SURVEYED:
        for item in await client.list(resource, namespace=None):
            found.add(item["metadata"]["namespace"])
    return found - owned


async def report_unowned(client: KubeClient, config: Config) -> None:
    """Survey every ``config.resync_interval`` seconds, until cancelled."""
    owned = frozenset(config.shard_namespaces)
    reported: set[str] = set()
    while True:
        try:
            unowned = await unowned_namespaces(client, owned)
        except KubernetesAPIError as exc:
            log.warning("Could not survey namespaces for unowned Mirage resources: %s", exc)
        else:
            for namespace in sorted(unowned - reported):
                log.warning(
                    "Namespace %s holds Mirage resources but no shard owns it: nothing "
                    "reconciles them (add it to one shard's namespaces)",
                    namespace,
                )
                metrics.UNOWNED_NAMESPACES.labels(namespace=namespace).set(1)
            for namespace in reported - unowned:
                log.info("Namespace %s is owned by a shard or holds no Mirage resource", namespace)
                metrics.UNOWNED_NAMESPACES.remove(namespace)
            reported = unowned
        await asyncio.sleep(config.resync_interval)
