"""Operator-level activities: login, the metrics endpoint, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import yaml
from aiohttp import web

from mirage_operator.errors import StartupError
from mirage_operator.handlers.context import OperatorContext
from mirage_operator.metrics import start_metrics_server


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
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="mirage.dev", key="last-handled-configuration"
        )
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
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
