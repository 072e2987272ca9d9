"""A warm standby: kopf's watches run, everything that writes waits for the Lease."""

from __future__ import annotations

import asyncio
import math
from typing import Any, cast

import kopf

from mirage_operator.config import Config
from mirage_operator.handlers import register
from mirage_operator.handlers.context import ObjectKey, Outcome
from mirage_operator.leadership import WarmStandby
from tests.unit.handlers.fakes import Connection, FakeKube


def _vault_secret(name: str, *, deleting: bool, finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "finalizers": finalizers}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return {"apiVersion": "mirage.dev/v1alpha1", "kind": "VaultSecret", "metadata": meta}


async def test_a_standby_queues_but_neither_reconciles_nor_lets_kopf_write_until_it_leads() -> None:
    registry, settings = kopf.OperatorRegistry(), kopf.OperatorSettings()
    context = register(registry, Config())
    fake = FakeKube()
    connection = Connection(fake)
    connection.identity = "b"  # type: ignore[attr-defined]
    context.kube = cast(Any, connection)
    finalizer = settings.persistence.finalizer
    changing = registry._changing.get_all_handlers()
    assert changing  # the VaultSecret's release on deletion

    standby = WarmStandby(registry, settings, context)
    # kopf finds no change handler (nothing to write: finalizer, diff-base, deletion), and a
    # finalizer nobody carries (none to take off the objects that carry the real one).
    assert not registry._changing.get_all_handlers()
    assert settings.persistence.finalizer != finalizer
    processed: list[ObjectKey] = []

    async def process(key: ObjectKey) -> Outcome:
        processed.append(key)
        return Outcome(math.inf)

    context.queue.process["K"] = process
    context.queue.ensure_started()
    try:
        meta = {"name": "a", "namespace": "ns", "generation": 2}
        context.objects[("K", "ns", "a")] = {"metadata": meta, "status": {"observedGeneration": 2}}
        context.objects[("K", "ns", "new")] = {"metadata": {**meta, "name": "new"}}
        context.queue.add(("K", "ns", "a"))
        context.queue.add(("K", "ns", "new"))
        for _ in range(5):  # the workers run, and leave the keys queued
            await asyncio.sleep(0)
        assert processed == [] and len(context.queue) == 2
        for name, deleting, finalizers in [
            ("gone", True, [finalizer]),  # deleted while nobody could handle it
            ("free", True, []),  # kopf has nothing to do for it
            ("kept", False, [finalizer]),
        ]:
            body = fake.put(_vault_secret(name, deleting=deleting, finalizers=finalizers))
            context.objects[("VaultSecret", "ns", name)] = body

        await standby.lead()
        assert registry._changing.get_all_handlers() == changing
        assert settings.persistence.finalizer == finalizer
        while len(processed) < 2:
            await asyncio.sleep(0.01)
        # What nobody reconciled yet (applied while nobody led) goes before the resume pass.
        assert processed == [("K", "ns", "new"), ("K", "ns", "a")]
        # The one object kopf must handle and would get no event for is touched, once.
        assert fake.writes == [("patch", "VaultSecret", "gone")]
        annotations = fake.objects[("VaultSecret", "ns", "gone")]["metadata"]["annotations"]
        assert annotations == {WarmStandby.TOUCH_ANNOTATION: "b"}
    finally:
        await context.queue.stop()
