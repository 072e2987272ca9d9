"""``mirage run`` with leader election: stand by with warm watches, lead, hand over on exit.

A standby runs kopf's watches, which keep the cached objects and the child index current,
while everything that writes is held back; when the Lease is won, reconciling starts from
those caches without listing anything again (docs/adr/0113, amending 0110), as
controller-runtime's caches run on every replica and its controllers on the leader only.
Losing the Lease ends the process at once, as client-go's leader election does: a fresh
start as a standby is the only safe state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import kopf

from mirage_operator.config import Config
from mirage_operator.errors import KubernetesAPIError
from mirage_operator.handlers.context import ObjectKey, OperatorContext
from mirage_operator.k8s import resources
from mirage_operator.k8s.client import KubeClient
from mirage_operator.k8s.leaderelection import ElectionSettings, LeaderElector, default_identity

log = logging.getLogger(__name__)

T = TypeVar("T")

EXIT_LOST_LEASE = 3
"""Exit status of a leader that lost its Lease (the kubelet restarts it as a standby)."""


def elector_for(
    config: Config, info: kopf.ConnectionInfo, context: OperatorContext
) -> LeaderElector:
    """The candidate of this process; the handlers' client then writes only while it leads,
    and every request names the candidate."""
    identity = config.leader_election_identity or default_identity()
    context.kube.identity = identity
    # Its own HTTP session: renewals never queue behind the reconcilers' requests.
    client = KubeClient(info, user_agent=context.kube.user_agent, timeout=config.renew_deadline)
    elector = LeaderElector(
        client,
        ElectionSettings(
            namespace=config.operator_namespace,
            name=config.leader_election_lease,
            identity=identity,
            lease_duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
        ),
    )
    context.kube.may_write = lambda: elector.is_leader
    return elector


def warm_up() -> None:
    """Validate the bundled examples once: the first validation compiles the schemas' CEL
    rules (seconds of CPU), which a standby does before it leads rather than after."""
    from mirage_operator.api.validation import problems_of
    from mirage_operator.examples import EXAMPLES_DIR
    from mirage_operator.yamlsafe import read_objects

    for document in read_objects([EXAMPLES_DIR], on_error=lambda _: None):
        problems_of(document.body)


def _lost() -> None:
    # Writes already stopped (the client checks is_leader); kopf's own in-flight calls and
    # Vault calls stop with the process.
    logging.shutdown()
    os._exit(EXIT_LOST_LEASE)


class _ElectionThread:
    """The elector on its own thread and event loop, as client-go runs it in its own
    goroutine: a reconcile that holds the operator's loop (CPU-bound validation, a slow
    handler) cannot delay a renewal past the deadline."""

    def __init__(self, elector: LeaderElector) -> None:
        self.elector = elector
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="leader-election", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run ``coroutine`` on the elector's loop; cancelling the future cancels it. A future,
        not a task: at exit kopf waits 5 s for every task created after it started."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class WarmStandby:
    """What a standby holds back while kopf's watches keep its caches warm (docs/adr/0113).

    kopf runs from the start: its watches feed the cached custom resources and the child
    index, so a takeover starts from them without a listing. What writes is held back: the
    work queue (every reconcile) waits, and kopf's change handling — finalizers, its
    diff-base annotation, the deletion handlers — is switched off. kopf takes its finalizer
    off any object no change handler requires it for, whatever the handlers' filters say, so
    a filter cannot do that: the standby's kopf has no change handler and looks for a
    finalizer no object carries. Both come back when the Lease is won.
    """

    FINALIZER = "mirage.dev/standby-never-sets-this"
    """kopf's finalizer while standing by: none to add (no change handler), none to remove."""
    TOUCH_ANNOTATION = "mirage.dev/taken-over-by"

    def __init__(
        self,
        registry: kopf.OperatorRegistry,
        settings: kopf.OperatorSettings,
        context: OperatorContext,
    ) -> None:
        self._registry, self._settings, self._context = registry, settings, context
        self._finalizer = settings.persistence.finalizer
        # kopf has no public way to switch its change handlers off and on again.
        self._changing = list(registry._changing._handlers)
        registry._changing._handlers.clear()
        settings.persistence.finalizer = self.FINALIZER
        context.queue.pause()

    async def lead(self) -> None:
        """Give kopf its change handling back, start reconciling every cached object (each
        event while standing by queued it once; those whose current generation nobody has
        reconciled yet first: a service applied while nobody led waits for no resume of the
        converged ones), and touch each object being deleted that
        still carries kopf's finalizer: kopf handles an object only on an event, and its
        deletion event came while this process could not act on it."""
        self._settings.persistence.finalizer = self._finalizer
        self._registry._changing._handlers.extend(self._changing)
        self._context.queue.resume(first=self._unreconciled)
        for body in list(self._context.objects.values()):
            meta = body["metadata"]
            if not meta.get("deletionTimestamp") or self._finalizer not in (
                meta.get("finalizers") or ()
            ):
                continue
            try:
                await self._context.kube.client.merge_patch(
                    resources.for_kind(body["apiVersion"], body["kind"]),
                    namespace=meta.get("namespace"),
                    name=meta["name"],
                    patch={
                        "metadata": {
                            "annotations": {self.TOUCH_ANNOTATION: self._context.kube.identity}
                        }
                    },
                )
            except KubernetesAPIError as exc:
                log.warning(
                    "%s %s/%s: could not touch it for kopf: %s",
                    body["kind"],
                    meta.get("namespace"),
                    meta["name"],
                    exc,
                )

    def _unreconciled(self, key: ObjectKey) -> bool:
        body = self._context.objects.get(key)
        if body is None:
            return False
        observed = (body.get("status") or {}).get("observedGeneration")
        return bool(observed != body["metadata"].get("generation"))


async def beside(main: Awaitable[None], duty: Callable[[], Awaitable[None]] | None) -> None:
    """Await ``main`` with ``duty`` running beside it, cancelled when ``main`` ends."""
    task = asyncio.ensure_future(duty()) if duty is not None else None
    try:
        await main
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_elected(
    elector: LeaderElector,
    operator: Callable[[], Awaitable[None]],
    standby: WarmStandby,
    duty: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``operator`` (kopf) at once, held back by ``standby`` until the Lease is won, then
    lead with ``duty`` beside it; release the Lease when ``operator`` returns (kopf's own
    signal handling stops it on SIGTERM/SIGINT, standby or leader)."""
    election = _ElectionThread(elector)
    waiting = election.run(elector.acquire())

    async def lead() -> None:
        await waiting
        await standby.lead()
        keeper = election.run(elector.keep(on_lost=_lost))
        try:
            if duty is not None:
                await duty()
            await keeper
        finally:
            keeper.cancel()

    # Created before kopf starts, so that kopf does not count it among its own tasks.
    leading = asyncio.ensure_future(lead())
    leading.add_done_callback(_failed)
    try:
        await operator()
    finally:
        standing_by = not waiting.done()
        waiting.cancel()
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        await election.run(elector.release())
        await election.run(elector.close())
        election.stop()
    if standing_by:
        log.info("Stopped while standing by")


def _failed(leading: asyncio.Future[None]) -> None:
    # Standing by for ever, or leading without the Lease kept, is worse than a restart.
    if not leading.cancelled() and leading.exception() is not None:
        log.error("Leader election failed: %r", leading.exception())
        _lost()
