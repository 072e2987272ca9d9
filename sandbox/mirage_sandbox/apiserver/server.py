"""The emulated Kubernetes API server: lifecycle, in-process accessors, faults, kubeconfig.

:class:`APIServer` wires the store, the catalogue, the semantics (:class:`~.cluster.Cluster`),
the HTTP app, the garbage collector and the emulated controllers together::

    server = APIServer()
    url = await server.start()            # http://127.0.0.1:<port>
    server.write_kubeconfig(tmp_path / "kubeconfig")
    ...
    await server.stop()

or, from synchronous code, ``with run_apiserver_in_thread() as server: ...``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ipaddress
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from mirage_sandbox.apiserver import status
from mirage_sandbox.apiserver.app import Route, build_app, token_response
from mirage_sandbox.apiserver.cluster import (
    MERGE_PATCH,
    Cluster,
    WriteOptions,
    now_rfc3339,
)
from mirage_sandbox.apiserver.faults import FailureRule, Faults
from mirage_sandbox.apiserver.requestlog import RequestLog, RequestRecord
from mirage_sandbox.apiserver.resources import Catalog, ResourceType
from mirage_sandbox.apiserver.store import Store, call_on_loop
from mirage_sandbox.apiserver.tokens import ISSUER, TokenSigner, token_request_problems
from mirage_sandbox.apiserver.watch import WatchSession
from mirage_sandbox.errors import EmulatedAPIError

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class APIServer:
    """An in-process Kubernetes API server with real semantics (see the package docs)."""

    def __init__(
        self,
        *,
        require_auth: bool = False,
        admin_token: str | None = None,
        bookmark_interval: float = 5.0,
        watch_timeout: float = 1800.0,
        history_size: int = 20_000,
        controller_delay: float = 0.0,
        gc_delay: float = 0.0,
        namespaces: Iterable[str] = INITIAL_NAMESPACES,
    ) -> None:
        self.log = logging.getLogger("mirage.sandbox.apiserver")
        self.store = Store(history_size)
        self.catalog = Catalog()
        self.cluster = Cluster(self.store, self.catalog)
        self.faults = Faults()
        self.requests = RequestLog()
        self.signer = TokenSigner()
        self.require_auth = require_auth
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.controller_delay = controller_delay
        self.gc_delay = gc_delay
        self.sessions: set[WatchSession] = set()
        self.url = ""
        self.address = ""
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: list[Any] = []
        for name in namespaces:
            self.cluster.ensure_namespace(name)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); returns the base URL.

        Only loopback addresses are accepted: the server speaks plain HTTP without
        authentication by default, so it must never be reachable from elsewhere."""
        if not _is_loopback(host):
            raise ValueError(f"the emulated API server only listens on loopback, not {host!r}")
        from mirage_sandbox.apiserver.controllers import Controllers
        from mirage_sandbox.apiserver.gc import GarbageCollector

        self._loop = asyncio.get_running_loop()
        self.store.bind_loop(self._loop)
        self._runner = web.AppRunner(
            build_app(self), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = port
        server_obj = site._server
        if isinstance(server_obj, asyncio.base_events.Server) and server_obj.sockets:
            bound = server_obj.sockets[0].getsockname()[1]
        self.address = f"{host}:{bound}"
        self.url = f"http://{self.address}"
        self._background = [
            GarbageCollector(self.cluster, delay=self.gc_delay),
            Controllers(self.cluster, delay=self.controller_delay),
        ]
        for worker in self._background:
            worker.start()
        return self.url

    async def stop(self) -> None:
        """Stop serving: close watches, background workers and the listener."""
        for worker in self._background:
            await worker.stop()
        self._background = []
        for session in list(self.sessions):
            session.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.store.bind_loop(None)

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(
        self, path: str | Path, *, namespace: str = "default", context: str = "mirage-sandbox"
    ) -> Path:
        """Write a kubeconfig (plain HTTP on loopback, bearer token) for kubectl and kopf."""
        if not self.url:
            raise RuntimeError("start the server before writing a kubeconfig")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-admin", "user": {"token": self.admin_token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": context,
                        "user": f"{context}-admin",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        target.chmod(0o600)
        return target

    # -- in-process accessors ------------------------------------------------------------------

    def resource(self, name: str) -> ResourceType:
        """Resolve a resource name as kubectl does (``deploy``, ``mirageservices.mirage.dev``)."""
        return self.cluster.resource(name)

    def _rt_of(self, obj: Mapping[str, Any]) -> ResourceType:
        rt = self.catalog.by_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if rt is None:
            raise EmulatedAPIError(
                404, "NotFound", f"no resource serves {obj.get('apiVersion')}/{obj.get('kind')}"
            )
        return rt

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The object (raises a 404 :class:`EmulatedAPIError` if missing)."""
        return self.cluster.get(self.resource(resource), namespace, name)

    def find(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or ``None``."""
        return self.cluster.find(self.resource(resource), namespace, name)

    def list(
        self, resource: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The objects of a resource (in ``namespace`` if given)."""
        listed = self.cluster.list(
            self.resource(resource), namespace, label_selector=label_selector
        )
        items: builtins.list[dict[str, Any]] = listed["items"]
        return items

    def create(
        self, obj: Mapping[str, Any], *, field_manager: str = "mirage-test"
    ) -> dict[str, Any]:
        """Create ``obj`` (its apiVersion/kind name the resource)."""
        rt = self._rt_of(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or ("default" if rt.namespaced else None)
        return self.cluster.create(rt, ns, obj, WriteOptions(field_manager=field_manager)).obj

    def update(
        self, obj: Mapping[str, Any], *, subresource: str = "", field_manager: str = "mirage-test"
    ) -> dict[str, Any]:
        """Replace ``obj`` (PUT semantics, including the resourceVersion check)."""
        rt = self._rt_of(obj)
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ("default" if rt.namespaced else None)
        options = WriteOptions(field_manager=field_manager)
        return self.cluster.update(rt, ns, meta["name"], obj, options, subresource=subresource).obj

    def apply(
        self,
        obj: Mapping[str, Any],
        *,
        field_manager: str = "mirage-test",
        force: bool = False,
        subresource: str = "",
    ) -> dict[str, Any]:
        """Server-side apply ``obj``."""
        rt = self._rt_of(obj)
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or ("default" if rt.namespaced else None)
        options = WriteOptions(field_manager=field_manager, force=force)
        return self.cluster.apply(
            rt, ns, meta["name"], dict(obj), options, subresource=subresource
        ).obj

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = MERGE_PATCH,
        subresource: str = "",
        field_manager: str = "mirage-test",
    ) -> dict[str, Any]:
        """Patch an object (merge patch unless ``patch_type`` says otherwise)."""
        rt = self.resource(resource)
        options = WriteOptions(field_manager=field_manager)
        return self.cluster.patch(
            rt, namespace, name, patch_type, patch, options, subresource=subresource
        ).obj

    def delete(
        self,
        resource: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
    ) -> dict[str, Any]:
        """Delete an object (marks it if finalizers remain)."""
        return self.cluster.delete(
            self.resource(resource), namespace, name, propagation=propagation
        ).obj

    def install_crds(self, crds: Iterable[Mapping[str, Any]]) -> None:
        """Create (or update) CRDs; they are served and ``Established`` on return."""
        rt = self.resource("customresourcedefinitions.apiextensions.k8s.io")
        for crd in crds:
            name = crd["metadata"]["name"]
            current = self.cluster.find(rt, None, name)
            body = dict(crd)
            if current is None:
                self.cluster.create(rt, None, body, WriteOptions(field_manager="mirage-sandbox"))
            else:
                body = {
                    **body,
                    "metadata": {
                        **body["metadata"],
                        "resourceVersion": current["metadata"]["resourceVersion"],
                    },
                }
                self.cluster.update(
                    rt, None, name, body, WriteOptions(field_manager="mirage-sandbox")
                )

    # -- tokens --------------------------------------------------------------------------------

    def token_request(self, route: Route, body: Any) -> dict[str, Any]:
        """Serve ``POST serviceaccounts/<name>/token``."""
        assert route.name is not None and route.namespace is not None
        sa = self.cluster.get(route.rt, route.namespace, route.name)
        spec = dict((body or {}).get("spec") or {})
        problems = token_request_problems(spec)
        if problems:
            tr = ResourceType(
                "authentication.k8s.io", "v1", "token", "tokenrequest", "TokenRequest", True
            )
            raise status.invalid(tr, route.name, problems)
        audiences = list(spec.get("audiences") or [ISSUER])
        seconds = int(spec.get("expirationSeconds") or 3600)
        token, expires = self.signer.issue(
            route.namespace, route.name, sa["metadata"]["uid"], audiences, seconds
        )
        return token_response(
            route.namespace,
            route.name,
            {**spec, "audiences": audiences, "expirationSeconds": seconds},
            token,
            expires,
        )

    def review_token(
        self, token: str, audiences: builtins.list[str] | None
    ) -> tuple[bool, dict[str, Any], builtins.list[str]]:
        """Verify a token: (authenticated, user info, audiences it is valid for)."""
        claims = self.signer.verify(token)
        if claims is None:
            return False, {}, []
        token_aud = list(claims.get("aud") or [])
        wanted = audiences or [ISSUER]
        matched = [a for a in wanted if a in token_aud]
        if not matched:
            return False, {}, []
        ref = claims.get("kubernetes.io") or {}
        namespace = ref.get("namespace", "")
        sa_ref = ref.get("serviceaccount") or {}
        sa = self.cluster.find(self.resource("serviceaccounts"), namespace, sa_ref.get("name", ""))
        if sa is None or sa["metadata"].get("uid") != sa_ref.get("uid"):
            return False, {}, []
        user = {
            "username": f"system:serviceaccount:{namespace}:{sa_ref.get('name')}",
            "uid": sa_ref.get("uid"),
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "extra": {
                "authentication.kubernetes.io/credential-id": [f"JTI={claims.get('jti', '')}"]
            },
        }
        return True, user, matched

    def token_review(self, body: Any) -> dict[str, Any]:
        """Serve ``POST tokenreviews``."""
        spec = dict((body or {}).get("spec") or {})
        ok, user, audiences = self.review_token(str(spec.get("token") or ""), spec.get("audiences"))
        review_status: dict[str, Any] = (
            {"authenticated": True, "user": user, "audiences": audiences}
            if ok
            else {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
        )
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": review_status,
        }

    # -- OpenAPI -------------------------------------------------------------------------------

    def openapi_document(self, segments: builtins.list[str]) -> dict[str, Any]:
        """``/openapi/v2``, ``/openapi/v3`` and ``/openapi/v3/<group-version path>``."""
        from mirage_sandbox.apiserver import openapi

        document = openapi.document(self.catalog, segments, self.url)
        if document is None:
            raise status.not_found_path("/openapi/" + "/".join(segments))
        return document

    # -- faults --------------------------------------------------------------------------------

    def fail(self, verb: str, resource: str | None = None, **kwargs: Any) -> FailureRule:
        """Fail the next calls matching ``verb``/``resource``; see :meth:`Faults.fail`."""
        return self.faults.fail(verb, resource, **kwargs)

    def _on_loop(self, fn: Callable[[], None]) -> None:
        call_on_loop(self._loop, fn, wait=True)

    def drop_watches(self) -> int:
        """End every open watch stream (clients reconnect); returns how many."""
        sessions = list(self.sessions)

        def drop() -> None:
            for s in sessions:
                s.drop()

        self._on_loop(drop)
        return len(sessions)

    def stall_watches(self, seconds: float) -> int:
        """Keep every open watch stream open but silent for ``seconds``; returns how many."""
        sessions = list(self.sessions)

        def stall() -> None:
            assert self._loop is not None
            until = self._loop.time() + seconds
            for s in sessions:
                s.stall(until)

        self._on_loop(stall)
        return len(sessions)

    def expire_resource_versions(self, *, close_watches: bool = True) -> int:
        """Compact the history: every older resourceVersion now gets ``410 Gone``. Open watch
        streams receive the 410 ``ERROR`` event and end (``close_watches``). Returns the new
        oldest resourceVersion."""
        oldest = self.store.compact()
        if close_watches:
            sessions = list(self.sessions)

            def expire() -> None:
                for s in sessions:
                    s.expire()

            self._on_loop(expire)
        return oldest

    # -- request log ---------------------------------------------------------------------------

    def write_calls(
        self, resource: str | None = None, namespace: str | None = None, *, since: float = 0.0
    ) -> builtins.list[RequestRecord]:
        """Write requests (create/update/patch/delete, not dry runs) answered so far."""
        return self.requests.writes(resource, namespace, since=since)

    async def wait_for(
        self, condition: Callable[[], Any], *, within: float = 10.0, interval: float = 0.02
    ) -> Any:
        """Poll ``condition`` until truthy (returned) or raise :class:`TimeoutError`."""
        deadline = time.monotonic() + within
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {within}s")
            await asyncio.sleep(interval)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def run_apiserver_in_thread(
    host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> Iterator[APIServer]:
    """Run an :class:`APIServer` on its own event loop in a daemon thread (for sync code)."""
    server = APIServer(**kwargs)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start(host, port))
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="mirage-apiserver", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


__all__ = ["INITIAL_NAMESPACES", "APIServer", "now_rfc3339", "run_apiserver_in_thread"]
