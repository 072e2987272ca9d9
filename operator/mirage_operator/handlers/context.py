"""State the handlers share: configuration, the API connection, per-object serialisation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mirage_operator.config import Config
from mirage_operator.k8s.client import KubeConnection

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name) of a custom resource."""


@dataclass
class Serializer:
    """Runs one reconcile at a time per object, and coalesces requests that pile up.

    kopf's create/update/resume handlers, the resync timer and child events may all want
    to reconcile the same object at once; the second waits, and any number of requests
    made while one is waiting collapse into that one.
    """

    locks: dict[ObjectKey, asyncio.Lock] = field(default_factory=dict)
    queued: set[ObjectKey] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def lock(self, key: ObjectKey) -> asyncio.Lock:
        """The lock of one object."""
        return self.locks.setdefault(key, asyncio.Lock())

    def request(self, key: ObjectKey, run: Callable[[], Awaitable[None]]) -> None:
        """Schedule ``run`` under the object's lock unless a run is already waiting."""
        if key in self.queued:
            return
        self.queued.add(key)

        async def runner() -> None:
            async with self.lock(key):
                self.queued.discard(key)
                await run()

        task = asyncio.get_running_loop().create_task(runner())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


@dataclass
class OperatorContext:
    """Everything a handler needs besides the object it is called for."""

    config: Config
    kube: KubeConnection = field(default_factory=KubeConnection)
    serializer: Serializer = field(default_factory=Serializer)
