"""State the handlers share: configuration, the API connection, the watch-fed caches and the
work queue that schedules every reconcile (docs/adr/0020)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirage_operator.config import Config
from mirage_operator.k8s.children import ChildIndex
from mirage_operator.k8s.client import KubeConnection

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name) of a custom resource."""

WORKERS = 16
"""Reconciles under way at once (docs/adr/0020): enough to keep the client's 32 request slots
busy (a reconcile mostly waits on its applies), few enough that a cold start of thousands of
objects does not hold thousands of half-done reconciles in memory."""

FOLLOW_UPS_PER_NEW = 4
"""Follow-ups (a key whose children reported, or whose timer came due) served for each new
key (an object's own event) while both wait: a cold start of 3,000 services queued every
child's report behind the 3,000 first reconciles, so each service's status came ~37 s after
its children were applied, and the Deployment controller's report often came after
``CONTROLLER_DEFERRAL`` (docs/adr/0020, amendment "two lanes"). Bounded, so that a stream of
follow-ups cannot starve new objects."""

COALESCE_AFTER = 10.0
"""Timers at least this many seconds away are rounded up to a whole second of the loop's
clock, so that the resyncs due within one second share one wake-up of the event loop: at
rest each wake-up cost ~200 µs beyond the resync's own work (docs/adr/0026). A backoff or a
resync 10 s or more away is at most 10 % later."""


@dataclass(frozen=True)
class Outcome:
    """What a reconcile asks of the queue: run again after ``delay`` seconds (``inf``: only on
    an event); with ``hold``, events that cannot change the outcome wait for the delay too
    (a backoff after a failure is not cut short by the echo of its own status write)."""

    delay: float
    hold: bool = False


Process = Callable[[ObjectKey], Awaitable[Outcome]]


class WorkQueue:
    """Schedules reconciles: one at a time per object, at most ``workers`` at once.

    As Kubernetes controllers' work queues do: a key added while it waits is not added twice;
    a key added while it is being reconciled runs once more afterwards; a key can be added
    after a delay (resync, retry). Exceptions of a reconcile are logged and retried with
    backoff by the reconciler's own :class:`Outcome`; no task is left without an owner.
    """

    def __init__(self, workers: int = WORKERS) -> None:
        self.workers = workers
        self.process: dict[str, Process] = {}
        self.resync: dict[str, Callable[[ObjectKey], float | None]] = {}
        """Per kind, what a timer asks before it queues a key: the seconds until the next
        resync when a reconcile now would find nothing to do (no worker woken for it),
        ``None`` to queue it."""
        self._ready: collections.deque[ObjectKey] = collections.deque()
        """New keys: an object's own event."""
        self._follow: collections.deque[ObjectKey] = collections.deque()
        """Follow-ups: a key touched by its children's reports, or due by a timer."""
        self._streak = 0
        """Follow-ups served since the last new key."""
        self._queued: set[ObjectKey] = set()
        self._active: set[ObjectKey] = set()
        self._again: dict[ObjectKey, bool] = {}
        self._timers: dict[ObjectKey, tuple[float, asyncio.TimerHandle]] = {}
        self._held: dict[ObjectKey, float] = {}
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        """One future per worker waiting for a key: a key wakes one worker, not all of them
        (at rest, a resync every few milliseconds woke all sixteen; docs/adr/0026)."""
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        return len(self._ready) + len(self._follow)

    def ensure_started(self) -> None:
        """Start the workers, once. Called from a kopf handler, so that they inherit kopf's
        context (the queue Events are posted through)."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._idle.clear()
            self._tasks = [loop.create_task(self._work()) for _ in range(self.workers)]

    def pause(self) -> None:
        """Keep queueing keys, but reconcile none until :meth:`resume` (a standby's queue)."""
        self._open.clear()

    def resume(self, first: Callable[[ObjectKey], bool] = lambda _: False) -> None:
        """Reconcile the keys queued meanwhile (those ``first`` picks before the others), and
        every one after."""

        def later(key: ObjectKey) -> bool:
            return not first(key)

        # Stable sorts: FIFO otherwise.
        self._ready = collections.deque(sorted(self._ready, key=later))
        self._follow = collections.deque(sorted(self._follow, key=later))
        self._open.set()

    async def stop(self) -> None:
        """Cancel the workers and every timer, and wait for the workers to end."""
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def add(self, key: ObjectKey, *, urgent: bool = False, follow_up: bool = False) -> None:
        """Reconcile ``key`` soon; unless ``urgent``, not before a backoff it is held in. A
        ``follow_up`` (see :data:`FOLLOW_UPS_PER_NEW`) goes before new keys."""
        loop = asyncio.get_running_loop()
        held = self._held.get(key, 0.0) - loop.time()
        if held > 0 and not urgent:
            self.add_after(key, held)
            return
        if key in self._active:
            self._again[key] = self._again.get(key, False) or urgent
            return
        if key in self._queued:
            return
        self._cancel_timer(key)
        self._queued.add(key)
        (self._follow if follow_up else self._ready).append(key)
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def add_after(self, key: ObjectKey, delay: float) -> None:
        """Reconcile ``key`` in ``delay`` seconds (an earlier timer already set wins)."""
        if math.isinf(delay):
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if delay >= COALESCE_AFTER:
            when = math.ceil(when)
        existing = self._timers.get(key)
        if existing is not None and existing[0] <= when:
            return
        self._cancel_timer(key)
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def pending(self, key: ObjectKey) -> bool:
        """Whether a reconcile of ``key`` is under way or due without a timer: queued for a
        worker, running (and, if an event came meanwhile, queued again right after). A key
        waiting only for a timer — a backoff after a failure, a resync — is not pending."""
        return key in self._queued or key in self._active

    def held(self, key: ObjectKey) -> bool:
        """Whether ``key`` waits out a failure's backoff (its next reconcile is a retry)."""
        return key in self._held and not self.pending(key)

    def forget(self, key: ObjectKey) -> None:
        """Drop every trace of ``key`` (its object is gone)."""
        self._cancel_timer(key)
        self._held.pop(key, None)
        self._again.pop(key, None)

    def _fire(self, key: ObjectKey) -> None:
        self._timers.pop(key, None)
        self._held.pop(key, None)
        resync = self.resync.get(key[0])
        if resync is not None and key not in self._active and key not in self._queued:
            delay = resync(key)
            if delay is not None:
                self.add_after(key, delay)
                return
        self.add(key, follow_up=True)

    def _cancel_timer(self, key: ObjectKey) -> None:
        existing = self._timers.pop(key, None)
        if existing is not None:
            existing[1].cancel()

    async def _work(self) -> None:
        while True:
            while not len(self):
                waiter = asyncio.get_running_loop().create_future()
                self._idle.append(waiter)
                await waiter
            await self._open.wait()
            if not len(self):  # another worker took it meanwhile
                continue
            key = self._next()
            self._queued.discard(key)
            self._active.add(key)
            try:
                outcome = await self.process[key[0]](key)
            except Exception:
                log.exception("reconcile of %s %s/%s failed unexpectedly", *key)
                outcome = Outcome(delay=60.0, hold=True)
            finally:
                self._active.discard(key)
            loop = asyncio.get_running_loop()
            if outcome.hold and not math.isinf(outcome.delay):
                self._held[key] = loop.time() + outcome.delay
            else:
                self._held.pop(key, None)
            if key in self._again:
                self.add(key, urgent=self._again.pop(key), follow_up=True)
            self.add_after(key, outcome.delay)

    def _next(self) -> ObjectKey:
        if self._follow and (not self._ready or self._streak < FOLLOW_UPS_PER_NEW):
            self._streak += 1
            return self._follow.popleft()
        self._streak = 0
        return self._ready.popleft()


@dataclass
class _ObjectLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    """Tasks holding or awaiting ``lock``."""


@dataclass
class Serializer:
    """One lock per object, for work that must not overlap a reconcile of the same object
    (a delete handler of kopf's beside the queue's reconcile). A lock exists only while
    someone holds it or waits for it, so the table is as large as the work under way."""

    locks: dict[ObjectKey, _ObjectLock] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def lock(self, key: ObjectKey) -> AsyncIterator[None]:
        """Hold the lock of one object."""
        entry = self.locks.setdefault(key, _ObjectLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self.locks[key]


@dataclass
class OperatorContext:
    """Everything a handler needs besides the object it is called for."""

    config: Config
    kube: KubeConnection = field(default_factory=KubeConnection)
    serializer: Serializer = field(default_factory=Serializer)
    queue: WorkQueue = field(default_factory=WorkQueue)
    children: ChildIndex = field(default_factory=ChildIndex)
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    """The latest body of every custom resource, from watch events and from our own writes'
    answers (whichever is newer), without managedFields (:func:`cacheable`): what a reconcile
    reads instead of a GET."""

    store_child: Callable[[Mapping[str, Any]], None] = lambda _: None
    """Store a version of an object of a child kind in ``children`` and reconcile its owner if
    that can change the owner's outcome (set by the children's watch registration)."""

    def cache_answer(self, key: ObjectKey, sent: Mapping[str, Any], answer: Any) -> None:
        """Cache ``answer`` (the object after the operator's write to ``sent``) unless another
        version arrived meanwhile: its watch echo is then recognised as nothing new."""
        cached = self.objects.get(key)
        version = sent["metadata"].get("resourceVersion")
        if (
            isinstance(answer, dict)
            and cached
            and cached["metadata"].get("resourceVersion") == version
        ):
            self.objects[key] = cacheable(answer)


def cacheable(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` as ``OperatorContext.objects`` keeps it: without managedFields, which no
    reconcile of a custom resource reads and which is half of its size (docs/adr/0025)."""
    meta = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    return {**body, "metadata": meta}
