"""Builder of the ServiceMonitor (monitoring.coreos.com/v1) that scrapes a service's metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mirage_operator.config import Config
from mirage_operator.render.meta import object_meta

API_VERSION = "monitoring.coreos.com/v1"
KIND = "ServiceMonitor"


def build_service_monitor(
    *,
    name: str,
    namespace: str,
    selector_labels: Mapping[str, str],
    labels: Mapping[str, str],
    port: str,
    path: str,
    interval: str,
    scrape_timeout: str,
    relabelings: Sequence[Mapping[str, Any]],
    config: Config,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ServiceMonitor scraping ``port``/``path`` of the Services matching ``selector_labels``
    in ``namespace`` only; ``labels`` plus ``config.monitoring_labels`` (which a
    kube-prometheus-stack Prometheus selects by) label the object itself."""
    endpoint: dict[str, Any] = {
        "port": port,
        "path": path,
        "interval": interval,
        "scrapeTimeout": scrape_timeout,
    }
    if relabelings:
        # Copied, so that a caller mutating its spec later cannot change a built manifest.
        endpoint["relabelings"] = [dict(item) for item in relabelings]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": object_meta(
            name=name,
            namespace=namespace,
            labels={**labels, **dict(config.monitoring_labels)},
            owner=owner,
        ),
        "spec": {
            "selector": {"matchLabels": dict(selector_labels)},
            # Never follow a label match into another tenant's namespace.
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [endpoint],
        },
    }
