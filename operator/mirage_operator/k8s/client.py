"""The operator's Kubernetes API client: the only code that talks HTTP to the API server.

It is a small aiohttp client (kopf already depends on aiohttp) built from the same
``kopf.ConnectionInfo`` that kopf logs in with, so one set of credentials serves both. It
speaks exactly what the operator needs: get, list, server-side apply, delete, status patches,
Events and TokenRequests — each checked against the RBAC table in :mod:`.resources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from importlib.metadata import version
from typing import Any

import aiohttp
import kopf

from mirage_operator import __version__, metrics
from mirage_operator.errors import (
    KubernetesAPIError,
    MirageError,
    NotLeaderError,
    ServiceAccountTokenError,
)
from mirage_operator.k8s import resources
from mirage_operator.k8s.resources import Resource

logger = logging.getLogger(__name__)

USER_AGENT = f"mirage-operator/{__version__}"
"""Identifies the operator's calls in API server audit logs (and the emulator's request log)."""
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"

_READ_VERBS = frozenset({"get", "list", "watch"})

# Statuses that heal by themselves; everything else is a bug in what we sent.
# First retry delays (doubling per failure in a row, docs/adr/0020) where no Retry-After says.
_RETRY_AFTER_DEFAULT = {409: 1.0, 429: 5.0, 500: 1.0, 502: 1.0, 503: 5.0, 504: 1.0}


LIST_PAGE = 500
"""Objects per page of a list (client-go's pager reads 500 too)."""

MAX_IN_FLIGHT = 32
"""Requests under way at once: what API priority and fairness counts (seats in flight, not
rate). The connection pool holds as many connections, so a request never waits in aiohttp's
pool: it waits here, before its timeout starts (docs/adr/0020)."""


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``take`` waits for one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), 0.0

    async def take(self) -> None:
        """Wait until a token is available and take it (FIFO by arrival is not guaranteed)."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class _Session:
    """An aiohttp session and the requests under way on it: a session that is replaced (new
    credentials) is closed when its last request is done, not under it."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.requests = 0
        self.retired = False

    async def release(self) -> None:
        self.requests -= 1
        if self.retired and not self.requests:
            await self.http.close()

    async def retire(self) -> None:
        self.retired = True
        if not self.requests:
            await self.http.close()


class KubeClient:
    """Async Kubernetes API client bound to one connection."""

    def __init__(
        self,
        info: kopf.ConnectionInfo,
        *,
        connect_timeout: float = 10.0,
        timeout: float = 30.0,
        user_agent: str = USER_AGENT,
        may_write: Callable[[], bool] | None = None,
        login: Callable[[], kopf.ConnectionInfo] | None = None,
        qps: float = 0.0,
        burst: int = 1,
    ) -> None:
        """``qps`` > 0 rate-limits requests client-side (``qps`` a second, ``burst`` at once
        after a pause); 0 leaves only the bound on requests in flight."""
        self._info = info
        self._user_agent = user_agent
        self._may_write = may_write
        self._login = login
        # No total timeout: a request's time starts when it holds a slot (``_slots``), and the
        # socket timeouts bound a connect and each read separately.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=timeout
        )
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._bucket = TokenBucket(qps, max(burst, 1)) if qps > 0 else None

    async def _acquire(self) -> _Session:
        """The current session, counted as in use until ``release``."""
        async with self._lock:
            if self._session is None:
                ssl: Any = (
                    self._info.as_ssl_context() if self._info.server.startswith("https") else True
                )
                connector = aiohttp.TCPConnector(ssl=ssl, limit=MAX_IN_FLIGHT)
                self._session = _Session(
                    aiohttp.ClientSession(
                        base_url=self._info.server.rstrip("/") + "/",
                        connector=connector,
                        headers={**self._info.as_http_headers(), "User-Agent": self._user_agent},
                        timeout=self._timeout,
                    )
                )
            self._session.requests += 1
            return self._session

    async def _relogin(self, refused: _Session) -> bool:
        """Read the credentials again after ``refused`` met a 401; whether there are new ones
        (another request may have read them already)."""
        if self._login is None:
            return False
        async with self._lock:
            if self._session is refused:
                try:
                    self._info = await asyncio.to_thread(self._login)
                except Exception as exc:  # whatever it is, the 401 stands
                    logger.warning("logging in to the API server again failed: %s", exc)
                    return False
                self._session = None
                await refused.retire()
        return True

    async def close(self) -> None:
        """Close the HTTP session (once the requests under way on it are done)."""
        async with self._lock:
            session, self._session = self._session, None
        if session is not None:
            await session.retire()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        allow_404: bool = False,
    ) -> dict[str, Any] | None:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        # Credentials expire (a projected ServiceAccount token is rotated, a kubeconfig
        # refreshed): a 401 reads them again and retries once; a second 401 stands.
        session, (status, text, retry_after) = await self._send(method, path, params, data, headers)
        if status == 401 and await self._relogin(session):
            _, (status, text, retry_after) = await self._send(method, path, params, data, headers)
        if status == 404 and allow_404:
            return None
        if status >= 400:
            metrics.API_ERRORS.labels(code=str(status)).inc()
            raise _api_error(status, text, retry_after)
        return json.loads(text) if text else {}

    async def _object(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """:meth:`_request` for a call that answers with an object (no 404 passed over)."""
        result = await self._request(method, path, **options)
        assert result is not None
        return result

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: str | None,
        headers: Mapping[str, str],
    ) -> tuple[_Session, tuple[int, str, str | None]]:
        """The session used, and the answer's status, body and Retry-After."""
        session = await self._acquire()
        try:
            if self._bucket is not None:
                await self._bucket.take()
            async with (
                self._slots,
                session.http.request(
                    method, path.lstrip("/"), params=params, data=data, headers=headers
                ) as response,
            ):
                text = await response.text()
                return session, (response.status, text, response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            metrics.API_ERRORS.labels(code="0").inc()
            raise KubernetesAPIError(0, f"no answer from the API server: {exc}") from exc
        finally:
            await session.release()

    def _check(self, resource: Resource, verb: str) -> None:
        if verb not in resource.verbs:
            raise MirageError(f"RBAC table does not grant {verb} on {resource.plural}")
        # A replica that does not hold the Lease writes nothing but the Lease itself.
        if (
            verb not in _READ_VERBS
            and resource is not resources.LEASE
            and self._may_write is not None
            and not self._may_write()
        ):
            raise NotLeaderError(f"not the leader: refusing {verb} on {resource.plural}")

    async def get(
        self, resource: Resource, *, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or ``None`` when it does not exist."""
        self._check(resource, "get")
        return await self._request(
            "GET", resource.path(namespace=namespace, name=name), allow_404=True
        )

    async def list(
        self, resource: Resource, *, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object in the namespace (or cluster) matching ``label_selector``, read in
        pages of :data:`LIST_PAGE` objects (one huge answer would hold the API server's
        memory, and ours, at once)."""
        self._check(resource, "list")
        path = resource.path(namespace=namespace)
        query = {"labelSelector": label_selector} if label_selector else {}
        items: list[dict[str, Any]] = []
        page: dict[str, Any] | None = {"limit": str(LIST_PAGE)}
        while page is not None:
            try:
                result = await self._object("GET", path, params=query | page)
            except KubernetesAPIError as exc:
                if exc.status != 410 or "continue" not in page:
                    raise
                # The continue token expired (the list took longer than the server keeps its
                # snapshot): read it all again in one answer, as client-go's pager does.
                items, result = [], await self._object("GET", path, params=query or None)
            items.extend(result.get("items", []))
            token = (result.get("metadata") or {}).get("continue")
            page = {"limit": str(LIST_PAGE), "continue": token} if token else None
        for item in items:  # list items carry no apiVersion/kind on the wire
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        return items

    async def apply(
        self, resource: Resource, body: Mapping[str, Any], *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        """Server-side apply ``body`` (which must be a complete intent) under ``field_manager``."""
        self._check(resource, "patch")
        self._check(resource, "create")  # an apply that creates is authorized as a create
        meta = body["metadata"]
        return await self._object(
            "PATCH",
            resource.path(namespace=meta.get("namespace"), name=meta["name"]),
            params={"fieldManager": field_manager, "force": "true" if force else "false"},
            body=body,
            content_type=APPLY_PATCH,
        )

    async def patch_status(
        self, resource: Resource, *, namespace: str | None, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the status subresource; ``None`` when the object is gone."""
        self._check(resource, "patch")
        return await self._request(
            "PATCH",
            resource.path(namespace=namespace, name=name),
            body={"status": status},
            content_type=MERGE_PATCH,
            allow_404=True,
        )

    async def merge_patch(
        self,
        resource: Resource,
        *,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        field_manager: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON-merge-patch an object (rollout restarts, reverting insecure fields); ``None``
        when it is gone. Without ``field_manager`` the server names the manager after the
        user agent."""
        self._check(resource, "patch")
        return await self._request(
            "PATCH",
            resource.path(namespace=namespace, name=name),
            params={"fieldManager": field_manager} if field_manager else None,
            body=patch,
            content_type=MERGE_PATCH,
            allow_404=True,
        )

    async def delete(
        self, resource: Resource, *, namespace: str | None, name: str, uid: str | None = None
    ) -> None:
        """Delete in the background; ``uid`` guards against deleting a newer object of the name."""
        self._check(resource, "delete")
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if uid:
            options["preconditions"] = {"uid": uid}
        await self._request(
            "DELETE", resource.path(namespace=namespace, name=name), body=options, allow_404=True
        )

    async def create(
        self,
        resource: Resource,
        *,
        namespace: str | None,
        body: Mapping[str, Any],
        name: str | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` to the collection (or to a subresource of ``name``). Unlike an apply,
        it fails (409 AlreadyExists) when an object of that name exists."""
        self._check(resource, "create")
        return await self._object(
            "POST",
            resource.path(namespace=namespace, name=name),
            params={"fieldManager": field_manager} if field_manager else None,
            body=body,
        )

    async def replace(
        self, resource: Resource, *, namespace: str | None, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PUT ``body``; its ``metadata.resourceVersion`` makes it a compare-and-swap (409 when
        the object changed since it was read)."""
        self._check(resource, "update")
        return await self._object("PUT", resource.path(namespace=namespace, name=name), body=body)

    async def request_token(
        self, namespace: str, service_account: str, audience: str, expiration_seconds: int
    ) -> str:
        """A short-lived token of ``namespace/service_account`` for ``audience`` (TokenRequest);
        the Vault client's ``token_for``. :class:`ServiceAccountTokenError` when refused."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": [audience], "expirationSeconds": expiration_seconds},
        }
        try:
            answer = await self.create(
                resources.SERVICE_ACCOUNT_TOKEN,
                namespace=namespace,
                name=service_account,
                body=body,
            )
        except KubernetesAPIError as exc:
            raise ServiceAccountTokenError(
                exc.status,
                f"TokenRequest for ServiceAccount {namespace}/{service_account} failed: "
                + exc.detail,
                delay=exc.delay,
                reason=exc.api_reason,
            ) from None
        return str(answer["status"]["token"])


def _api_error(status: int, text: str, retry_after: str | None) -> KubernetesAPIError:
    """The error of a refused request, from the API server's ``Status`` body: its message,
    its reason and the refused fields (``details.causes``)."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {"message": text}
    message = str(answer.get("message") or text or f"HTTP {status}")
    causes = tuple(
        (str(cause.get("field") or ""), str(cause.get("message") or cause.get("reason") or ""))
        for cause in ((answer.get("details") or {}).get("causes") or ())
        if isinstance(cause, dict)
    )
    # Most servers repeat the causes in the message; add those it leaves out.
    extra = [f"{field}: {why}" for field, why in causes if field and field not in message]
    if extra:
        message += " (" + "; ".join(extra) + ")"
    delay = _RETRY_AFTER_DEFAULT.get(status, 30.0)
    if retry_after:
        with contextlib.suppress(ValueError):
            delay = max(float(retry_after), 1.0)
    return KubernetesAPIError(
        status, message[:500], delay=delay, reason=str(answer.get("reason") or ""), causes=causes
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdentifiedConnectionInfo(kopf.ConnectionInfo):
    """kopf's connection, with a User-Agent naming this replica: kopf's own calls (progress
    annotations, finalizers, Events) are then told apart from another replica's in audit logs."""

    user_agent: str = ""

    def as_http_headers(self) -> dict[str, str]:
        """kopf's headers plus ``User-Agent``."""
        return {**super().as_http_headers(), "User-Agent": self.user_agent}


class KubeConnection:
    """The client the handlers share; (re)bound each time kopf logs in."""

    def __init__(self) -> None:
        self._client: KubeClient | None = None
        self.identity: str | None = None
        """This replica's name in the leader election, added to every User-Agent."""
        self.may_write: Callable[[], bool] | None = None
        """Whether writes are allowed now (the leader election's ``is_leader``)."""

    @property
    def user_agent(self) -> str:
        """The operator client's User-Agent."""
        return f"{USER_AGENT} ({self.identity})" if self.identity else USER_AGENT

    def identified(self, info: kopf.ConnectionInfo) -> kopf.ConnectionInfo:
        """``info`` for kopf's own client: kopf's User-Agent, with this replica's identity
        when there is one (the field manager the API server derives stays ``kopf``)."""
        if self.identity is None:
            return info
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
        agent = f"kopf/{version('kopf')} (mirage-operator; {self.identity})"
        return IdentifiedConnectionInfo(**fields, user_agent=agent)

    async def connect(
        self,
        info: kopf.ConnectionInfo,
        *,
        login: Callable[[], kopf.ConnectionInfo] | None = None,
        qps: float = 0.0,
        burst: int = 1,
    ) -> None:
        """Bind to fresh credentials, closing the client they replace; ``login`` reads them
        again when the API server refuses them (401); ``qps`` and ``burst`` as
        :class:`KubeClient` takes them."""
        client = KubeClient(
            info,
            user_agent=self.user_agent,
            may_write=self.may_write,
            login=login,
            qps=qps,
            burst=burst,
        )
        old, self._client = self._client, client
        if old is not None:
            await old.close()

    @property
    def client(self) -> KubeClient:
        """The bound client; raises before the first login."""
        if self._client is None:
            raise MirageError("not logged in to the Kubernetes API yet")
        return self._client

    async def close(self) -> None:
        """Close the bound client's session."""
        if self._client is not None:
            await self._client.close()
