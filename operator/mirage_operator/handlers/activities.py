"""Operator-level activities: login, the metrics endpoint, clean shutdown."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from aiohttp import web

from mirage_operator.handlers.context import OperatorContext
from mirage_operator.metrics import start_metrics_server


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
        # Progress and diff-base live in annotations of our own domain, not in status, so that
        # status stays exactly what the operator reports.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="mirage.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="mirage.dev", key="last-handled-configuration"
        )
        settings.posting.level = logging.INFO
        settings.watching.server_timeout = 300
        if context.config.metrics_port:
            runners.append(await start_metrics_server(context.config.metrics_port))
            logger.info("metrics on :%d/metrics", context.config.metrics_port)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for runner in runners:
            await runner.cleanup()
        await context.kube.close()
