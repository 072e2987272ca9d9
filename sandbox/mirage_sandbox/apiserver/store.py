"""Object storage of the emulated API server: objects, the resourceVersion counter, history.

Like etcd behind kube-apiserver, the store keeps the current object of every key, a global
monotonic revision (``metadata.resourceVersion`` is its string form), and a bounded window of
past changes from which watches resume. Changes older than the window are *compacted*: a
watch or consistent list asking for them gets ``410 Gone``.

All semantics (validation, generation, managed fields...) live above the store; it only
records what it is told, stamps the revision and fans the change out to subscribers.
It is thread-safe, so that tests can read it from outside the server's event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mirage_sandbox.apiserver.resources import StorageKey

Obj = dict[str, Any]


def clone(value: Any) -> Any:
    """A deep copy of a JSON value (twice as fast as ``copy.deepcopy`` for API objects)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return copy.deepcopy(value)


def call_on_loop(
    loop: asyncio.AbstractEventLoop | None, fn: Callable[[], None], *, wait: bool
) -> None:
    """Run ``fn`` on ``loop``: at once when called from it (or when there is no loop running),
    else scheduled thread-safely — and, with ``wait``, waited for (at most five seconds)."""
    if loop is None or loop.is_closed():
        fn()
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn()
        return
    if not wait:
        loop.call_soon_threadsafe(fn)
        return
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        finally:
            done.set()

    loop.call_soon_threadsafe(run)
    done.wait(5)


@dataclass(frozen=True)
class Change:
    """One committed change, as watch streams deliver it."""

    revision: int
    type: str
    """``ADDED``, ``MODIFIED`` or ``DELETED``."""
    storage: StorageKey
    namespace: str
    name: str
    obj: Obj
    """The object after the change (for ``DELETED``: its last state, with the new revision)."""
    old: Obj | None
    """The object before the change (``None`` for ``ADDED``)."""


class RevisionGone(Exception):
    """The requested revision is older than the history window."""

    def __init__(self, requested: int, oldest: int) -> None:
        self.requested = requested
        self.oldest = oldest
        super().__init__(f"too old resource version: {requested} ({oldest})")


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    """Current objects by storage key, plus the change history."""

    def __init__(self, history_size: int = 20_000) -> None:
        self._lock = threading.RLock()
        self._objects: dict[StorageKey, dict[tuple[str, str], Obj]] = {}
        self._history: deque[Change] = deque(maxlen=history_size)
        self._revision = 1
        self._compacted = 0  # changes with revision <= this are gone
        self._subscribers: list[Callable[[Change], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def lock(self) -> threading.RLock:
        """The store's lock: hold it to read a snapshot and subscribe atomically."""
        return self._lock

    # -- reading -------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The latest revision (the resourceVersion of the latest change)."""
        return self._revision

    @property
    def oldest_revision(self) -> int:
        """The oldest revision a watch can still resume from."""
        with self._lock:
            if self._history:
                return max(self._compacted, self._history[0].revision - 1)
            return max(self._compacted, self._revision)

    def get(self, storage: StorageKey, namespace: str | None, name: str) -> Obj | None:
        """A copy of the object, or ``None``."""
        with self._lock:
            obj = self._objects.get(storage, {}).get((namespace or "", name))
            return clone(obj) if obj is not None else None

    def list(self, storage: StorageKey, namespace: str | None = None) -> list[Obj]:
        """Copies of the objects of ``storage`` (in ``namespace`` if given), sorted by key."""
        with self._lock:
            items = self._objects.get(storage, {})
            keys = sorted(k for k in items if namespace is None or k[0] == namespace)
            return [clone(items[k]) for k in keys]

    def count(self, storage: StorageKey, namespace: str | None = None) -> int:
        """How many objects ``storage`` holds (in ``namespace`` if given)."""
        with self._lock:
            items = self._objects.get(storage, {})
            return sum(1 for k in items if namespace is None or k[0] == namespace)

    def list_at(self, storage: StorageKey, revision: int) -> builtins.list[Obj]:
        """The objects of ``storage`` as they were at ``revision`` (a consistent snapshot),
        rebuilt by undoing later changes; :class:`RevisionGone` if the history is gone."""
        with self._lock:
            if revision < self.oldest_revision:
                raise RevisionGone(revision, self.oldest_revision)
            state = dict(self._objects.get(storage, {}))
            for change in reversed(self._history):
                if change.revision <= revision:
                    break
                if change.storage != storage:
                    continue
                key = (change.namespace, change.name)
                if change.old is None:
                    state.pop(key, None)
                else:
                    state[key] = change.old
            return [clone(state[k]) for k in sorted(state)]

    def changes_since(self, revision: int) -> builtins.list[Change]:
        """Every change after ``revision``; :class:`RevisionGone` if some are compacted."""
        with self._lock:
            if revision < self.oldest_revision:
                raise RevisionGone(revision, self.oldest_revision)
            return [c for c in self._history if c.revision > revision]

    # -- writing -------------------------------------------------------------------------------

    def commit(self, storage: StorageKey, change_type: str, obj: Obj, old: Obj | None) -> Obj:
        """Record a change: stamp the next revision into ``obj``, store it (or drop it for
        ``DELETED``), append it to the history and notify subscribers. Returns a copy."""
        with self._lock:
            self._revision += 1
            stored = clone(obj)
            stored["metadata"]["resourceVersion"] = str(self._revision)
            key = _key(stored)
            bucket = self._objects.setdefault(storage, {})
            if change_type == "DELETED":
                bucket.pop(key, None)
            else:
                bucket[key] = stored
            change = Change(
                revision=self._revision,
                type=change_type,
                storage=storage,
                namespace=key[0],
                name=key[1],
                obj=stored,
                old=old,
            )
            self._history.append(change)
            subscribers = list(self._subscribers)
        for notify in subscribers:
            self._deliver(notify, change)
        copied: Obj = clone(stored)
        return copied

    def compact(self, revision: int | None = None) -> int:
        """Forget history up to ``revision`` (default: all of it); returns the new oldest."""
        with self._lock:
            upto = self._revision if revision is None else min(revision, self._revision)
            self._compacted = max(self._compacted, upto)
            while self._history and self._history[0].revision <= self._compacted:
                self._history.popleft()
            return self.oldest_revision

    # -- subscribing ---------------------------------------------------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Deliver notifications on ``loop`` (asyncio queues are not thread-safe)."""
        self._loop = loop

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback`` with every future change; returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _deliver(self, notify: Callable[[Change], None], change: Change) -> None:
        call_on_loop(self._loop, lambda: notify(change), wait=False)

    def __iter__(self) -> Iterator[tuple[StorageKey, Obj]]:
        with self._lock:
            snapshot = [(s, clone(o)) for s, b in self._objects.items() for o in b.values()]
        return iter(snapshot)

    # -- read-only views (no copies: callers must not mutate what they get) ----------------------

    def peek(self, storage: StorageKey, namespace: str | None, name: str) -> Obj | None:
        """The stored object itself (read-only), or ``None``."""
        with self._lock:
            return self._objects.get(storage, {}).get((namespace or "", name))

    def peek_list(self, storage: StorageKey, namespace: str | None = None) -> builtins.list[Obj]:
        """The stored objects themselves (read-only), sorted by key."""
        with self._lock:
            items = self._objects.get(storage, {})
            return [items[k] for k in sorted(items) if namespace is None or k[0] == namespace]

    def peek_all(self) -> builtins.list[tuple[StorageKey, Obj]]:
        """Every stored object itself (read-only), with its storage key."""
        with self._lock:
            return [(s, o) for s, b in self._objects.items() for o in b.values()]
