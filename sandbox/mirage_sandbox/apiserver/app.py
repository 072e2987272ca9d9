"""The HTTP face of the emulated API server: routing, content negotiation, Status answers.

One catch-all aiohttp handler parses Kubernetes REST paths (``/api/v1/namespaces/<ns>/<res>/
<name>/<sub>``, ``/apis/<group>/<version>/...``), maps the method and query to a verb, checks
injected faults and authentication, and hands over to :class:`~.cluster.Cluster`. It logs every
request (without bodies) in the :class:`~.requestlog.RequestLog`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mirage_operator import yamlsafe
from mirage_sandbox.apiserver import discovery, protobuf, status, tables
from mirage_sandbox.apiserver.cluster import (
    APPLY_PATCH,
    MERGE_PATCH,
    WriteOptions,
    WriteResult,
)
from mirage_sandbox.apiserver.requestlog import RequestRecord
from mirage_sandbox.apiserver.resources import ResourceType
from mirage_sandbox.apiserver.tokens import (
    DEFAULT_EXPIRATION,
    DISCOVERY_PATH,
    ISSUER,
    JWKS_CONTENT_TYPE,
    JWKS_PATH,
    discovery_document,
    token_request_problems,
)
from mirage_sandbox.apiserver.watch import serve_watch
from mirage_sandbox.errors import EmulatedAPIError

if TYPE_CHECKING:
    from mirage_sandbox.apiserver.server import APIServer

JSON = "application/json"


@dataclass
class Route:
    """A parsed resource URL."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


def _json(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    merged = {"Content-Type": JSON, **(headers or {})}
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status_code, headers=merged
    )


def _error(error: EmulatedAPIError) -> web.Response:
    return _json(status.status_body(error), error.code, error.headers)


def parse_route(server: APIServer, segments: list[str]) -> Route | None:
    """The resource a path names; ``None`` when the path is a discovery document."""
    if segments[:1] == ["api"] and len(segments) >= 2:
        group, version, rest = "", segments[1], segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 3:
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise status.not_found_path("/" + "/".join(segments))
    if not rest:
        return None
    catalog = server.catalog
    namespace: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and rest[2] in {"status", "finalize"})
    ):
        namespace, rest = rest[1], rest[2:]
    rt = catalog.lookup(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise status.not_found_path("/" + "/".join(segments))
    if namespace is not None and not rt.namespaced:
        raise status.not_found_path("/" + "/".join(segments))
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else ""
    if sub and sub not in rt.subresources:
        raise status.not_found_path("/" + "/".join(segments))
    return Route(rt, namespace, name, sub)


def _verb(method: str, route: Route, query: Mapping[str, str]) -> str:
    if method == "GET":
        if query.get("watch") in {"true", "1"}:
            return "watch"
        return "get" if route.name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if route.name else "deletecollection",
    }.get(method, method.lower())


def _field_manager(query: Mapping[str, str], user_agent: str) -> str:
    manager = query.get("fieldManager", "")
    if manager:
        if len(manager) > 128:
            raise status.bad_request("fieldManager: Too long: may not be more than 128 bytes")
        return manager
    # The real server derives it from the User-Agent ("kubectl/v1.37 (...)" -> "kubectl").
    return user_agent.split("/")[0].strip() or "unknown"


def _write_options(query: Mapping[str, str], user_agent: str) -> WriteOptions:
    dry_run = query.getall("dryRun", []) if hasattr(query, "getall") else [query.get("dryRun", "")]
    dry_run = [d for d in dry_run if d]
    if any(d != "All" for d in dry_run):
        raise status.bad_request(
            f'dryRun: Unsupported value: "{dry_run[0]}": supported values: "All"'
        )
    validation = query.get("fieldValidation", "") or "Warn"
    if validation not in {"Ignore", "Warn", "Strict"}:
        raise status.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": '
            'supported values: "Ignore", "Strict", "Warn"'
        )
    force = query.get("force", "false").lower() == "true"
    return WriteOptions(
        field_manager=_field_manager(query, user_agent),
        dry_run=bool(dry_run),
        field_validation=validation,
        force=force,
    )


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type.startswith("application/apply-patch"):
        try:
            return yamlsafe.decode(raw, source="the request body")
        except yamlsafe.YAMLInputError as exc:
            raise status.bad_request(f"error decoding YAML: {exc.reason}") from None
    if content_type == "application/vnd.kubernetes.protobuf":
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as exc:
            raise EmulatedAPIError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: application/json, application/yaml ({exc})",
            ) from None
    try:
        return json.loads(raw)
    except ValueError:
        try:
            return yamlsafe.load_one(
                yamlsafe.decode(raw, source="the request body"), source="the request body"
            )
        except yamlsafe.YAMLInputError as exc:
            raise status.bad_request(f"the request body is neither JSON nor YAML: {exc}") from None


def _result(result: WriteResult, code: int) -> web.Response:
    response = _json(result.obj, code)
    for warning in result.warnings:
        response.headers.add("Warning", f'299 - "{warning.replace(chr(34), chr(92) + chr(34))}"')
    return response


class Handler:
    """The request handler bound to one :class:`APIServer`."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        server = self.server
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            content_type=request.headers.get("Content-Type", ""),
            dry_run="dryRun" in request.query,
            user_agent=request.headers.get("User-Agent", ""),
            time=time.time(),
        )
        # Logged before serving, so that long watches show up while they run.
        server.requests.add(record)
        try:
            self._authenticate(request)
            response = await self._dispatch(request, record)
        except EmulatedAPIError as exc:
            response = _error(exc)
        except Exception as exc:
            response = _error(
                EmulatedAPIError(
                    500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}"
                )
            )
            server.log.exception("internal error serving %s %s", request.method, request.path)
        record.status = response.status
        return response

    def _authenticate(self, request: web.Request) -> None:
        server = self.server
        if not server.require_auth:
            return
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token and (token == server.admin_token or server.review_token(token, None)[0]):
            return
        raise EmulatedAPIError(401, "Unauthorized", "Unauthorized")

    async def _dispatch(self, request: web.Request, record: RequestRecord) -> web.StreamResponse:
        server = self.server
        path = request.path
        segments = [s for s in path.split("/") if s]
        accept = request.headers.get("Accept", "")
        if request.method == "GET":
            if path in {"/version", "/version/"}:
                return _json(discovery.version_info())
            if path in {"/healthz", "/livez", "/readyz"}:
                return web.Response(text="ok")
            if segments[:1] == ["openapi"]:
                return _json(server.openapi_document(segments[1:]))
            if path == DISCOVERY_PATH:
                return _json(discovery_document(ISSUER, server.url + JWKS_PATH))
            if path == JWKS_PATH:
                return _json(server.signer.jwks(), headers={"Content-Type": JWKS_CONTENT_TYPE})
            if segments == ["api"]:
                if discovery.wants_aggregated(accept):
                    return _json(
                        discovery.aggregated(server.catalog, legacy=True),
                        headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE},
                    )
                return _json(discovery.api_versions(server.address))
            if segments == ["apis"]:
                if discovery.wants_aggregated(accept):
                    return _json(
                        discovery.aggregated(server.catalog, legacy=False),
                        headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE},
                    )
                return _json(discovery.api_group_list(server.catalog))
            if len(segments) == 2 and segments[0] == "apis":
                doc = discovery.api_group(server.catalog, segments[1])
                if doc is None:
                    raise status.not_found_path(path)
                return _json(doc)
        route = parse_route(server, segments)
        if route is None:
            if request.method != "GET":
                raise status.method_not_allowed("")
            group, version = (
                ("", segments[1]) if segments[0] == "api" else (segments[1], segments[2])
            )
            doc = discovery.resource_list(server.catalog, group, version)
            if doc is None:
                raise status.not_found_path(path)
            return _json(doc)
        query = request.query
        verb = _verb(request.method, route, query)
        record.verb, record.group, record.resource = verb, route.rt.group, route.rt.plural
        record.namespace, record.name, record.subresource = (
            route.namespace,
            route.name,
            route.subresource,
        )
        if verb not in route.rt.verbs and not (
            route.subresource and verb in {"get", "update", "patch", "create"}
        ):
            raise status.method_not_allowed("")
        fault = server.faults.check(
            verb, route.rt.plural, route.namespace, route.name, route.subresource
        )
        if fault is not None:
            raise fault
        handler = getattr(self, f"_{verb}", None)
        if handler is None:
            raise status.method_not_allowed("")
        response: web.StreamResponse = await handler(request, route, record, accept)
        return response

    # -- reads ---------------------------------------------------------------------------------

    async def _get(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        assert route.name is not None
        if route.rt.namespaced and route.namespace is None:
            raise status.not_found_path(request.path)
        obj = self.server.cluster.get(route.rt, route.namespace, route.name)
        if route.subresource == "scale":
            return _json(_scale(route.rt, obj))
        if tables.wants_table(accept):
            return _json(
                tables.to_table(
                    route.rt,
                    [obj],
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                    include=request.query.get("includeObject", "Metadata"),
                )
            )
        return _json(obj)

    async def _list(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        query = request.query
        try:
            limit = int(query.get("limit", "0") or 0)
        except ValueError:
            raise status.bad_request("limit must be an integer") from None
        listed = self.server.cluster.list(
            route.rt,
            route.namespace,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
            limit=limit,
            continue_token=query.get("continue"),
            resource_version=query.get("resourceVersion"),
            resource_version_match=query.get("resourceVersionMatch"),
            copy_items=False,
        )
        if tables.wants_table(accept):
            meta = listed["metadata"]
            return _json(
                tables.to_table(
                    route.rt,
                    listed["items"],
                    resource_version=meta["resourceVersion"],
                    include=query.get("includeObject", "Metadata"),
                    continue_token=meta.get("continue"),
                )
            )
        return _json(listed)

    async def _watch(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        server = self.server
        query = request.query
        if query.get("resourceVersionMatch") not in {None, "", "NotOlderThan"}:
            raise status.bad_request(
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
            )
        predicate = server.cluster._filter(
            route.rt, query.get("labelSelector"), query.get("fieldSelector")
        )
        render = None
        if tables.wants_table(accept):
            rt = route.rt
            include = query.get("includeObject", "Metadata")

            def render(obj: dict[str, Any]) -> dict[str, Any]:
                return tables.to_table(
                    rt,
                    [obj],
                    resource_version=obj["metadata"].get("resourceVersion", ""),
                    include=include,
                )

        record.status = 200
        return await serve_watch(
            request,
            store=server.store,
            rt=route.rt,
            namespace=route.namespace,
            predicate=predicate,
            params=query,
            sessions=server.sessions,
            bookmark_interval=server.bookmark_interval,
            default_timeout=server.watch_timeout,
            render=render,
        )

    # -- writes --------------------------------------------------------------------------------

    async def _create(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        server = self.server
        options = _write_options(request.query, record.user_agent)
        record.field_manager, record.dry_run = options.field_manager, options.dry_run
        body = await _body(request)
        if route.subresource == "token":
            return _json(server.token_request(route, body), 201)
        if route.name is not None:
            raise status.method_not_allowed("")
        if route.rt.kind == "TokenReview":
            return _json(server.token_review(body), 201)
        if route.rt.kind == "SelfSubjectAccessReview":
            answer = dict(body or {})
            answer["status"] = {"allowed": True, "reason": "the Mirage sandbox allows everything"}
            return _json(answer, 201)
        if route.rt.namespaced and route.namespace is None:
            raise status.method_not_allowed("")
        result = server.cluster.create(route.rt, route.namespace, body, options)
        record.warnings = result.warnings
        return _result(result, 201)

    async def _update(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        assert route.name is not None
        server = self.server
        options = _write_options(request.query, record.user_agent)
        record.field_manager, record.dry_run = options.field_manager, options.dry_run
        body = await _body(request)
        if route.subresource == "scale":
            return self._write_scale(
                route, ((body or {}).get("spec") or {}).get("replicas"), options
            )
        result = server.cluster.update(
            route.rt, route.namespace, route.name, body, options, subresource=route.subresource
        )
        record.warnings = result.warnings
        return _result(result, 200)

    def _write_scale(self, route: Route, replicas: Any, options: WriteOptions) -> web.Response:
        """Set ``spec.replicas`` through the scale subresource; answer with the new Scale."""
        assert route.name is not None
        result = self.server.cluster.patch(
            route.rt,
            route.namespace,
            route.name,
            MERGE_PATCH,
            {"spec": {"replicas": replicas}},
            options,
            subresource="scale",  # managedFields name the subresource, as the real server's do
        )
        return _json(_scale(route.rt, result.obj))

    async def _patch(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        assert route.name is not None
        server = self.server
        options = _write_options(request.query, record.user_agent)
        content_type = request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip() == APPLY_PATCH and not request.query.get(
            "fieldManager"
        ):
            options = WriteOptions("", options.dry_run, options.field_validation, options.force)
        record.field_manager, record.dry_run = options.field_manager, options.dry_run
        body = await _body(request)
        if route.subresource == "scale":
            current = server.cluster.get(route.rt, route.namespace, route.name)
            from mirage_sandbox.apiserver.patch import merge_patch

            scale = merge_patch(_scale(route.rt, current), body)
            return self._write_scale(route, (scale.get("spec") or {}).get("replicas"), options)
        result = server.cluster.patch(
            route.rt,
            route.namespace,
            route.name,
            content_type,
            body,
            options,
            subresource=route.subresource,
        )
        record.warnings = result.warnings
        return _result(result, 201 if result.created else 200)

    async def _delete(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        assert route.name is not None
        server = self.server
        body = await _body(request) or {}
        propagation, preconditions, dry_run = _delete_options(request.query, body)
        record.dry_run = dry_run
        result = server.cluster.delete(
            route.rt,
            route.namespace,
            route.name,
            propagation=propagation,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        if result.deleted and route.rt.crd is None and route.rt.kind != "Pod":
            meta = result.obj.get("metadata", {})
            return _json(status.success_status(route.rt, route.name, meta.get("uid")))
        return _json(result.obj, 200 if result.deleted else 202)

    async def _deletecollection(
        self, request: web.Request, route: Route, record: RequestRecord, accept: str
    ) -> web.StreamResponse:
        body = await _body(request) or {}
        propagation, _, dry_run = _delete_options(request.query, body)
        record.dry_run = dry_run
        listed = self.server.cluster.delete_collection(
            route.rt,
            route.namespace,
            label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"),
            propagation=propagation,
            dry_run=dry_run,
        )
        return _json(listed)


def _delete_options(
    query: Mapping[str, str], body: Mapping[str, Any]
) -> tuple[str | None, dict[str, Any], bool]:
    propagation = body.get("propagationPolicy") or query.get("propagationPolicy")
    if body.get("orphanDependents") is True or query.get("orphanDependents") == "true":
        propagation = propagation or "Orphan"
    preconditions = dict(body.get("preconditions") or {})
    dry = list(body.get("dryRun") or []) + ([query["dryRun"]] if query.get("dryRun") else [])
    if any(d != "All" for d in dry):
        raise status.bad_request(f'dryRun: Unsupported value: "{dry[0]}": supported values: "All"')
    return propagation, preconditions, bool(dry)


def _scale(rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    spec = obj.get("spec") or {}
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in labels.items()),
        },
    }


def token_response(
    namespace: str, name: str, spec: Mapping[str, Any], token: str, expires: int
) -> dict[str, Any]:
    """The TokenRequest answer."""
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {
            "audiences": list(spec.get("audiences") or [ISSUER]),
            "expirationSeconds": int(spec.get("expirationSeconds") or DEFAULT_EXPIRATION),
            "boundObjectRef": spec.get("boundObjectRef"),
        },
        "status": {
            "token": token,
            "expirationTimestamp": datetime.fromtimestamp(expires, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        },
    }


def build_app(server: APIServer) -> web.Application:
    """The aiohttp application serving ``server``."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", Handler(server).__call__)
    return app


__all__ = ["build_app", "parse_route", "token_request_problems", "token_response"]
