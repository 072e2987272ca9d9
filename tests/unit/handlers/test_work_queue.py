"""The work queue: each key added is reconciled, and a key wakes one idle worker, not all."""

from __future__ import annotations

import asyncio
import math

from mirage_operator.handlers.context import ObjectKey, Outcome, WorkQueue


async def test_a_key_wakes_one_worker_and_is_processed_once() -> None:
    queue = WorkQueue(workers=4)
    done: list[ObjectKey] = []
    gate = asyncio.Event()

    async def process(key: ObjectKey) -> Outcome:
        await gate.wait()
        done.append(key)
        return Outcome(math.inf)

    queue.process["K"] = process
    queue.ensure_started()
    await asyncio.sleep(0)  # every worker waits for a key
    queue.add(("K", "ns", "a"))
    queue.add(("K", "ns", "a"))  # queued twice: reconciled once
    await asyncio.sleep(0)
    # One worker took the key; the three others were not woken (at rest, every resync woke
    # all the workers of the old queue for one key).
    assert sum(not waiter.done() for waiter in queue._idle) == 3
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert done == [("K", "ns", "a")]
    await queue.stop()
