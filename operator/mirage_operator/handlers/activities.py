"""Operator-level activities: login, the metrics endpoint, clean shutdown."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from aiohttp import web

from mirage_operator.handlers.context import OperatorContext
from mirage_operator.metrics import start_metrics_server

BATCH_WINDOW = 0.02
"""Seconds (kopf's default is 0.1); the handlers only update caches and the queue, which
coalesces bursts itself (docs/adr/0020)."""


def register(registry: kopf.OperatorRegistry, context: OperatorContext) -> None:
    """Register the activity handlers."""
    runners: list[web.AppRunner] = []

    @kopf.on.login(registry=registry)
    def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
        # In a pod the ServiceAccount wins; elsewhere the current kubeconfig context.
        info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )
        if info is None:
            raise kopf.LoginError("no in-cluster ServiceAccount and no kubeconfig found")
        context.kube.connect(info)
        return info

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
        # Events of one object are batched for this long before its handlers run: each hop
        # of a new service (its creation, its SLO's, their children's status) waits for it.
        settings.batching.batch_window = BATCH_WINDOW
        if context.config.metrics_port:
            runners.append(await start_metrics_server(context.config.metrics_port))
            logger.info("metrics on :%d/metrics", context.config.metrics_port)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await context.queue.stop()
        for runner in runners:
            await runner.cleanup()
        await context.kube.close()
