"""``mirage run`` with leader election: wait as a standby, lead with kopf, hand over on exit.

A standby is a started process — imports done, configuration checked, API credentials read,
the liveness endpoint answering — that holds no watch: kopf's pause closes its watch streams
(it cannot keep them open without processing them), so kopf starts when the Lease is won and
lists each resource then (docs/adr/0110). Losing the Lease ends the process at once, as
client-go's leader election does: a fresh start as a standby is the only safe state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import kopf
from aiohttp import web

from mirage_operator.config import Config
from mirage_operator.errors import StartupError
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.k8s.client import KubeClient
from mirage_operator.k8s.leaderelection import ElectionSettings, LeaderElector, default_identity
from mirage_operator.metrics import start_metrics_server

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


async def _standby_endpoints(liveness: str, metrics_port: int) -> list[web.AppRunner]:
    # Until kopf runs, these stand in for its liveness endpoint (the kubelet probes it) and for
    # the leader's metrics (mirage_leader 0); both are closed before kopf binds the ports.
    runners = []
    try:
        if metrics_port:
            runners.append(await start_metrics_server(metrics_port))
        if liveness:
            parts = urllib.parse.urlsplit(liveness)
            app = web.Application()

            async def standby(_: web.Request) -> web.Response:
                return web.json_response({"standby": True})

            app.router.add_get(parts.path or "/", standby)
            runner = web.AppRunner(app)
            await runner.setup()
            runners.append(runner)
            host, port = parts.hostname or "0.0.0.0", parts.port or 0  # noqa: S104
            try:
                await web.TCPSite(runner, host, port, reuse_address=True).start()
            except OSError as exc:
                raise StartupError.listening("liveness endpoint", host, port, exc) from None
    except BaseException:
        for runner in runners:
            await runner.cleanup()
        raise
    return runners


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

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the elector's loop; cancelling the caller cancels it."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def run_elected(
    elector: LeaderElector,
    operator: Callable[[], Awaitable[None]],
    *,
    liveness: str,
    metrics_port: int,
) -> None:
    """Wait for the Lease (SIGTERM/SIGINT meanwhile end the wait), run ``operator`` while
    leading, and release the Lease when it returns."""
    loop = asyncio.get_running_loop()
    runners = await _standby_endpoints(liveness, metrics_port)
    election = _ElectionThread(elector)
    waiting = asyncio.ensure_future(election.run(elector.acquire()))
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, waiting.cancel)
    try:
        await waiting
    except asyncio.CancelledError:
        log.info("Stopped while standing by")
        election.stop()
        return
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for runner in runners:
            await runner.cleanup()
    keeper = asyncio.ensure_future(election.run(elector.keep(on_lost=_lost)))
    try:
        await operator()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await election.run(elector.release())
        await election.run(elector.close())
        election.stop()
