"""Fixtures for the emulated Kubernetes API server tests: a started server, an HTTP client,
a test CRD, and the real kubectl."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from mirage_sandbox.apiserver import APIServer

GROUP = "test.mirage.dev"


def widget_crd() -> dict[str, Any]:
    """A test CRD: defaults, enums, bounds, a keyed list, CEL, status subresource, columns."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": "Widget",
                "plural": "widgets",
                "singular": "widget",
                "shortNames": ["wdg"],
                "listKind": "WidgetList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Widget for tests.",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "description": "Desired state of the Widget.",
                                    "required": ["image"],
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.replicas <= self.maxReplicas",
                                            "message": "replicas must not exceed maxReplicas",
                                        }
                                    ],
                                    "properties": {
                                        "image": {"type": "string", "minLength": 1},
                                        "replicas": {
                                            "type": "integer",
                                            "minimum": 1,
                                            "default": 1,
                                            "description": "How many widgets.",
                                        },
                                        "maxReplicas": {"type": "integer", "default": 10},
                                        "mode": {"type": "string", "enum": ["fast", "safe"]},
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "ports": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["name"],
                                            "items": {
                                                "type": "object",
                                                "required": ["name"],
                                                "properties": {
                                                    "name": {"type": "string"},
                                                    "port": {"type": "integer"},
                                                },
                                            },
                                        },
                                        "args": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                    "properties": {
                                        "observedGeneration": {"type": "integer"},
                                        "phase": {"type": "string"},
                                        "conditions": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["type"],
                                            "items": {
                                                "type": "object",
                                                "required": ["type", "status"],
                                                "properties": {
                                                    "type": {"type": "string"},
                                                    "status": {"type": "string"},
                                                    "reason": {"type": "string"},
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def widget(name: str = "w1", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A Widget body."""
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "nginx:1.27", **spec},
    }


def configmap(name: str = "cm1", namespace: str = "default", **data: str) -> dict[str, Any]:
    """A ConfigMap body."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": dict(data),
    }


def deployment(name: str = "web", namespace: str = "default", replicas: int = 1) -> dict[str, Any]:
    """A Deployment body with one container."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "env": [{"name": "A", "value": "1"}],
                            "ports": [{"containerPort": 80}],
                        }
                    ]
                },
            },
        },
    }


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    body: Any
    headers: Mapping[str, str]
    warnings: list[str]


class Kube:
    """A thin HTTP client for the emulated API (raw requests, no retries)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request; the body is JSON-encoded unless it is already a string."""
        data = None
        if body is not None:
            data = body if isinstance(body, str) else json.dumps(body)
        async with self.session.request(
            method,
            self.url + path,
            data=data,
            params=params,
            headers={"Content-Type": content_type, **(headers or {})},
        ) as response:
            raw = await response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode()
            return Answer(
                response.status,
                parsed,
                dict(response.headers),
                response.headers.getall("Warning", []),
            )

    async def get(self, path: str, **params: str) -> Answer:
        """GET with query parameters."""
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any, **params: str) -> Answer:
        """POST a JSON body."""
        return await self.request("POST", path, body, params=params)

    async def put(self, path: str, body: Any, **params: str) -> Answer:
        """PUT a JSON body."""
        return await self.request("PUT", path, body, params=params)

    async def patch(self, path: str, body: Any, content_type: str, **params: str) -> Answer:
        """PATCH with the given patch content type."""
        return await self.request("PATCH", path, body, params=params, content_type=content_type)

    async def delete(self, path: str, body: Any = None, **params: str) -> Answer:
        """DELETE, optionally with DeleteOptions."""
        return await self.request("DELETE", path, body, params=params)

    async def watch(self, path: str, *, limit: int, **params: str) -> list[dict[str, Any]]:
        """Open a watch and collect events until ``limit`` arrived or the stream ended."""
        events: list[dict[str, Any]] = []
        query = {"watch": "true", **params}
        async with self.session.get(self.url + path, params=query) as response:
            assert response.status == 200, await response.text()
            async for line in response.content:
                if line.strip():
                    events.append(json.loads(line))
                if len(events) >= limit:
                    break
        return events


CM = "/api/v1/namespaces/default/configmaps"
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"


@pytest.fixture
async def api() -> AsyncIterator[APIServer]:
    """A started emulated API server with the Widget CRD installed."""
    server = APIServer(bookmark_interval=0.2)
    await server.start()
    server.install_crds([widget_crd()])
    yield server
    await server.stop()


@pytest.fixture
async def kube(api: APIServer) -> AsyncIterator[Kube]:
    """An HTTP client for ``api``."""
    async with aiohttp.ClientSession() as session:
        yield Kube(session, api.url)
