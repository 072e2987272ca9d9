"""The same-run baseline: the least a kopf operator can do for the same result.

On each MirageService it applies the objects ``mirage render`` made for it beforehand (read
from the JSON file in ``BENCH_RENDERED``), owned by the service, then sets ``Ready=True``.
No parsing, no rendering, no status of children: the floor any real operator stands on.
Run as ``python -m benchmarks.baseline`` with ``KUBECONFIG`` set, in its own process.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import kopf

RENDERED: dict[str, list[dict[str, Any]]] = json.loads(
    Path(os.environ["BENCH_RENDERED"]).read_text()
)
STATE: dict[str, Any] = {}


def _path(obj: dict[str, Any]) -> str:
    group_version = obj["apiVersion"]
    plural = {
        "NetworkPolicy": "networkpolicies",
        "Ingress": "ingresses",
        "ServiceLevelObjective": "servicelevelobjectives",
        "PodDisruptionBudget": "poddisruptionbudgets",
        "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    }.get(obj["kind"], obj["kind"].lower() + "s")
    prefix = "api/v1" if group_version == "v1" else f"apis/{group_version}"
    meta = obj["metadata"]
    return f"{prefix}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    info = kopf.login_with_kubeconfig(**kwargs)
    STATE["info"] = info
    return info


async def _session() -> aiohttp.ClientSession:
    if "session" not in STATE:
        info = STATE["info"]
        STATE["session"] = aiohttp.ClientSession(
            base_url=info.server.rstrip("/") + "/",
            # Counted as the operator's calls by the harness (its user agents).
            headers={**info.as_http_headers(), "User-Agent": "kopf-baseline"},
        )
    session: aiohttp.ClientSession = STATE["session"]
    return session


@kopf.on.create("mirage.dev", "v1alpha1", "mirageservices")
async def create(body: kopf.Body, namespace: str, name: str, uid: str, **_: Any) -> None:
    session = await _session()
    owner = {
        "apiVersion": "mirage.dev/v1alpha1",
        "kind": "MirageService",
        "name": name,
        "uid": uid,
        "controller": True,
    }
    for obj in RENDERED[f"{namespace}/{name}"]:
        obj["metadata"]["ownerReferences"] = [owner]
        async with session.patch(
            _path(obj),
            params={"fieldManager": "baseline", "force": "true"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        ) as response:
            if response.status >= 400:
                raise kopf.TemporaryError(await response.text(), delay=1)
    ready = {"type": "Ready", "status": "True", "reason": "Applied", "message": ""}
    status = {"conditions": [{**ready, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    async with session.patch(
        f"apis/mirage.dev/v1alpha1/namespaces/{namespace}/mirageservices/{name}/status",
        data=json.dumps({"status": status}),
        headers={"Content-Type": "application/merge-patch+json"},
    ) as response:
        response.raise_for_status()


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if "session" in STATE:
        await STATE["session"].close()


if __name__ == "__main__":
    asyncio.run(kopf.operator(clusterwide=True, standalone=True))
