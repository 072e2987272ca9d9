"""The work queue: each key added is reconciled, and a key wakes one idle worker, not all."""

from __future__ import annotations

import asyncio
import math

import pytest

from mirage_operator.handlers.context import (
    COALESCE_AFTER,
    FOLLOW_UPS_PER_NEW,
    ObjectKey,
    Outcome,
    WorkQueue,
)


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


async def test_a_timer_whose_resync_finds_nothing_to_do_wakes_no_worker() -> None:
    """At rest a resync is the kind's lookup, called from the timer: no worker is woken and
    no reconcile runs; the lookup's answer arms the next timer (docs/adr/0026)."""
    queue = WorkQueue(workers=2)
    processed: list[ObjectKey] = []
    answers: dict[ObjectKey, float | None] = {
        ("K", "ns", "quiet"): 30.0,
        ("K", "ns", "dirty"): None,
    }

    async def process(key: ObjectKey) -> Outcome:
        processed.append(key)
        return Outcome(math.inf)

    queue.process["K"] = process
    queue.resync["K"] = answers.__getitem__
    queue.ensure_started()
    await asyncio.sleep(0)
    for key in answers:
        queue.add_after(key, 0.001)
    for _ in range(100):
        if processed:
            break
        await asyncio.sleep(0.001)
    for _ in range(10):
        await asyncio.sleep(0)
    assert processed == [("K", "ns", "dirty")]
    when, _ = queue._timers[("K", "ns", "quiet")]
    assert when - asyncio.get_running_loop().time() == pytest.approx(30.0, abs=1.0)
    assert ("K", "ns", "dirty") not in queue._timers  # processed: its outcome said no timer
    await queue.stop()


async def test_timers_a_resync_away_share_a_wake_up_and_short_ones_keep_their_time() -> None:
    """Resyncs due within the same second fire on one wake-up of the event loop (each cost
    ~200 µs at rest); a short delay (a deferred status, a first retry) is not moved."""
    queue = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    second = math.floor(start) + COALESCE_AFTER + 1  # both due within this second
    queue.add_after(("K", "ns", "a"), second + 0.1 - start)
    queue.add_after(("K", "ns", "b"), second + 0.6 - start)
    queue.add_after(("K", "ns", "short"), 1.3)
    whens = {key[2]: when for key, (when, _) in queue._timers.items()}
    assert whens["a"] == whens["b"] == second + 1
    assert whens["short"] - start == pytest.approx(1.3, abs=0.05)
    await queue.stop()


async def test_a_key_is_pending_while_queued_running_or_due_again_not_while_held() -> None:
    """``pending``: a reconcile of the key is queued or under way (an owner may wait for its
    report); a key waiting for a timer — a failure's backoff, a resync — is not pending."""
    queue = WorkQueue(workers=1)
    gate = asyncio.Event()
    failing, slow, behind, timed = (("K", "ns", n) for n in ("failing", "slow", "behind", "timed"))
    runs: list[ObjectKey] = []
    seen_by_behind: list[bool] = []

    async def process(key: ObjectKey) -> Outcome:
        runs.append(key)
        if key == failing:
            return Outcome(60.0, hold=True)  # a failure: held in its backoff
        if key == slow and runs.count(slow) == 1:
            await gate.wait()
        if key == behind:
            seen_by_behind.append(queue.pending(slow))
        return Outcome(math.inf)

    queue.process["K"] = process
    queue.ensure_started()
    try:
        queue.add(failing)
        assert queue.pending(failing) and not queue.held(failing)  # queued
        while failing not in runs:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)
        queue.add(failing)  # an event during the backoff waits for it
        assert not queue.pending(failing) and queue.held(failing)

        queue.add(slow)
        queue.add(behind)
        while slow not in runs:
            await asyncio.sleep(0.001)
        assert queue.pending(slow) and queue.pending(behind)  # running; queued behind it
        queue.add(slow)  # an event while it runs: due again right after
        queue.add_after(timed, 30.0)
        assert not queue.pending(timed) and not queue.held(timed)  # a timer only
        assert not queue.pending(("K", "ns", "unknown")) and not queue.held(("K", "ns", "unknown"))
        assert not queue.held(slow)
        gate.set()
        while behind not in runs:
            await asyncio.sleep(0.001)
        # Due again: run again before ``behind`` (a follow-up), and no longer pending after.
        assert runs[-3:] == [slow, slow, behind]
        assert seen_by_behind == [False]
        await asyncio.sleep(0)
        assert not queue.pending(slow) and not queue.pending(behind)
    finally:
        await queue.stop()


class _HeldWorker:
    """A queue of one worker, held by its first key until :meth:`release`, recording the
    order in which keys are reconciled."""

    def __init__(self) -> None:
        self.queue = WorkQueue(workers=1)
        self.gate = asyncio.Event()
        self.runs: list[str] = []
        self.queue.process["K"] = self._process

    async def _process(self, key: ObjectKey) -> Outcome:
        if not self.runs:
            await self.gate.wait()
        self.runs.append(key[2])
        return Outcome(math.inf)

    async def hold(self) -> None:
        self.queue.ensure_started()
        self.queue.add(("K", "ns", "first"))
        while not self.queue._active:
            await asyncio.sleep(0)

    async def release(self, runs: int) -> list[str]:
        self.gate.set()
        while len(self.runs) < runs:
            await asyncio.sleep(0.001)
        return self.runs


async def test_follow_ups_go_before_new_keys_but_cannot_starve_them() -> None:
    """A child's report (a follow-up) is served before the backlog of new objects, at most
    FOLLOW_UPS_PER_NEW in a row while new keys wait."""
    held = _HeldWorker()
    try:
        await held.hold()
        for i in range(3):
            held.queue.add(("K", "ns", f"new{i}"))
        follow_ups = FOLLOW_UPS_PER_NEW + 2
        for i in range(follow_ups):
            held.queue.add(("K", "ns", f"report{i}"), follow_up=True)
        reports = [f"report{i}" for i in range(follow_ups)]
        assert await held.release(4 + follow_ups) == [
            "first",
            *reports[:FOLLOW_UPS_PER_NEW],
            "new0",
            *reports[FOLLOW_UPS_PER_NEW:],
            "new1",
            "new2",
        ]
    finally:
        await held.queue.stop()


async def test_a_key_due_by_its_timer_is_a_follow_up() -> None:
    held = _HeldWorker()
    try:
        await held.hold()
        held.queue.add(("K", "ns", "new"))
        held.queue.add_after(("K", "ns", "timed"), 0.001)
        while len(held.queue) < 2:
            await asyncio.sleep(0.001)
        assert await held.release(3) == ["first", "timed", "new"]
    finally:
        await held.queue.stop()
