"""Operator-level activities: login, the metrics endpoint, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf
import yaml
from aiohttp import web

from mirage_operator.errors import StartupError
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.metrics import start_metrics_server
from mirage_operator.render.meta import MANAGED_BY, MANAGED_BY_LABEL

FieldSpec = str | tuple[str, ...] | list[str] | None
"""A field path as kopf's storages take it."""

SECRET_WATCH_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
"""The only Secrets the operator watches: those it labels (every Secret it writes, its HMAC
key and kept tokens). The API server filters the watch and its listings by it; kopf's
``labels=`` handler filters are applied in the operator, after every Secret of the cluster,
data included, has arrived (docs/adr/0126)."""

CHANGE_HANDLED_KINDS = frozenset({"VaultSecret"})
"""Kinds with a kopf change handler (a VaultSecret's deletion, handlers/vaultsecret)."""


IDLE_WORKER_TIMEOUT = 1.0
"""Seconds kopf keeps an object's event worker (a task and its queue) after its last event
(kopf's default: 5). At a cold start of 1,000 services the workers of thousands of children
were alive at once: peak RSS 218-256 MB with 5 s, 171-176 MB with 0.5-1 s (docs/adr/0020)."""


GC_THRESHOLDS = (20_000, 20, 20)
"""The cyclic garbage collector's thresholds in the operator process (CPython's default:
700, 10, 10). The operator keeps tens of thousands of watched bodies alive, and each full
collection walks all of them: at a cold start of 3,000 services the collector took 29 of
114 CPU-seconds (66 full collections of ~0.3 s). With these thresholds, after
:func:`tune_garbage_collector`'s freeze, it took ~6 s, operator CPU 0.92x and peak RSS 1.06x
in the same run (docs/adr/0020, amendment "garbage collector, measured")."""


def tune_garbage_collector() -> None:
    """Set :data:`GC_THRESHOLDS` and move every object alive now (modules, configuration,
    handler registrations: never garbage) out of the collector's reach. Called once, by the
    ``run`` command before the operator starts: it is a setting of the whole process."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class ChangeHandledDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base in ``mirage.dev`` annotations, built only for the kinds with a change
    handler. kopf builds it (a deep copy of the body) for every event of every watched kind,
    children included, although only change handlers read it: 11 % of the operator's CPU at a
    cold start of 1,000 services (docs/adr/0020, amendment)."""

    def __init__(self, *, kinds: frozenset[str], prefix: str, key: str) -> None:
        super().__init__(prefix=prefix, key=key)
        self.kinds = kinds

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        """The essence of ``body`` as kopf's storage builds it; empty for other kinds."""
        if body.get("kind") not in self.kinds:
            return cast(kopf.BodyEssence, {})
        return super().build(body=body, extra_fields=extra_fields)


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """Register the activity handlers."""
    runners: list[web.AppRunner] = []

    @kopf.on.login(registry=registry)
    async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
        try:
            info = await asyncio.to_thread(connection_info, settings)
        except StartupError as exc:
            raise kopf.PermanentError(str(exc)) from None
        config = context.config
        await context.kube.connect(
            info,
            login=lambda: connection_info(settings),
            qps=config.kube_api_qps,
            burst=config.kube_api_burst,
        )
        return context.kube.identified(info)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
        # kopf's change handling runs only for a database VaultSecret's deletion (the rest is
        # watch events and the operator's own queue, docs/adr/0020): its progress and
        # diff-base live in annotations of our own domain, not in status, so that status stays
        # exactly what the operator reports.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mirage.dev")
        settings.persistence.diffbase_storage = ChangeHandledDiffBase(
            kinds=CHANGE_HANDLED_KINDS, prefix="mirage.dev", key="last-handled-configuration"
        )
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        settings.watching.label_selectors["v1", "secrets"] = SECRET_WATCH_SELECTOR
        settings.queueing.idle_timeout = IDLE_WORKER_TIMEOUT
        if context.config.metrics_port:
            try:
                runners.append(await start_metrics_server(context.config.metrics_port))
            except StartupError as exc:  # a busy port stays busy: stop with the cause
                raise kopf.PermanentError(str(exc)) from None
            logger.info("metrics on :%d/metrics", context.config.metrics_port)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await context.queue.stop()
        for runner in runners:
            await runner.cleanup()
        await context.kube.close()


def connection_info(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """The in-cluster ServiceAccount's credentials in a pod, else the current kubeconfig
    context's (``KUBECONFIG`` or ``~/.kube/config``).

    Raises :class:`StartupError` when there are none or they cannot be read: retrying does
    not heal that (kopf would wait for credentials forever), so ``mirage run`` checks first.
    """
    try:
        info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )
    except (OSError, yaml.YAMLError, LookupError, TypeError, ValueError) as exc:
        raise StartupError(f"cannot read the kubeconfig: {exc}") from None
    if info is None:
        raise StartupError("no in-cluster ServiceAccount and no kubeconfig found")
    return info


def failure_cause(error: BaseException) -> str:
    """Why ``kopf.operator`` stopped, in one line: the exception ``error`` was raised from
    (kopf raises its ``ActivityError`` from the first failed handler's), else ``error``."""
    cause = error.__cause__ or error
    text = str(cause)
    if not isinstance(cause, kopf.PermanentError):  # ours carry their cause already
        text = f"{type(cause).__name__}: {text}"
    return " ".join(text.split())
