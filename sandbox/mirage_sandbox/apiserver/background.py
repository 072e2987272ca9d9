"""A tiny base for the emulated control loops: react to store changes, work off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mirage_sandbox.apiserver.cluster import Cluster
from mirage_sandbox.apiserver.store import Change


class Worker:
    """Runs :meth:`work` (after ``delay``) whenever :meth:`interested` says a change matters."""

    name = "worker"

    def __init__(self, cluster: Cluster, *, delay: float = 0.0) -> None:
        self.cluster = cluster
        self.delay = delay
        self.log = logging.getLogger(f"mirage.sandbox.{self.name}")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def interested(self, change: Change) -> bool:
        """Whether ``change`` should trigger a round of work."""
        return True

    def work(self) -> bool:
        """One round; returns whether more work may be pending (run again soon)."""
        raise NotImplementedError

    def start(self) -> None:
        """Subscribe to the store and start the loop (call from the server's event loop)."""
        self._wake = asyncio.Event()
        wake = self._wake

        def notify(change: Change) -> None:
            if self.interested(change):
                wake.set()

        self._unsubscribe = self.cluster.store.subscribe(notify)
        self._task = asyncio.create_task(self._run(), name=f"mirage-{self.name}")
        wake.set()

    async def stop(self) -> None:
        """Stop the loop."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.delay:
                await asyncio.sleep(self.delay)
            try:
                again = self.work()
            except Exception:
                self.log.exception("%s round failed", self.name)
                again = True
                await asyncio.sleep(0.5)
            if again:
                self._wake.set()
                await asyncio.sleep(0)
