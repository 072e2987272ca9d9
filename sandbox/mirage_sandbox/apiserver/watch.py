"""Watch streams: ``?watch=true``, as kube-apiserver serves them.

A watch starts from a resourceVersion: none or ``0`` first sends the current objects as
``ADDED`` (so does ``sendInitialEvents=true``, closed by a bookmark annotated
``k8s.io/initial-events-end``); a specific one replays the history after it, or answers an
``ERROR`` event carrying a ``410 Expired`` Status when that history is compacted. Then every
change streams as ``ADDED``/``MODIFIED``/``DELETED`` (a change that makes an object (stop)
match the selectors arrives as ``ADDED``/``DELETED``, like the real watch cache), with
``BOOKMARK`` events when asked for, until ``timeoutSeconds``.

Each open stream is a :class:`WatchSession`, which the fault injector can drop, stall or
expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mirage_sandbox.apiserver import status
from mirage_sandbox.apiserver.resources import ResourceType
from mirage_sandbox.apiserver.store import Change, RevisionGone, Store
from mirage_sandbox.apiserver.views import to_view
from mirage_sandbox.errors import EmulatedAPIError


@dataclass(eq=False)
class WatchSession:
    """One open watch stream."""

    rt: ResourceType
    namespace: str | None
    queue: asyncio.Queue[Change | None] = field(default_factory=asyncio.Queue)
    stall_until: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    expired: bool = False
    last_revision: int = 0
    """The newest revision this stream has seen (of any resource): the bookmark's version."""

    def drop(self) -> None:
        """End the stream now."""
        self.dropped = True
        self.queue.put_nowait(None)
        self.wake.set()

    def expire(self) -> None:
        """Send a ``410 Gone`` error event and end the stream."""
        self.expired = True
        self.queue.put_nowait(None)
        self.wake.set()

    def stall(self, until: float) -> None:
        """Send nothing (not even bookmarks) until the loop time ``until``."""
        self.stall_until = max(self.stall_until, until)


def gone_event(message: str) -> dict[str, Any]:
    """The ``ERROR`` watch event of an expired resourceVersion."""
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "Expired",
            "code": 410,
        },
    }


def _classify(change: Change, predicate: Callable[[Mapping[str, Any]], bool]) -> str | None:
    """The event type this change is for a watcher with ``predicate`` (None: not for it)."""
    new_match = predicate(change.obj)
    if change.type == "ADDED":
        return "ADDED" if new_match else None
    old_match = change.old is not None and predicate(change.old)
    if change.type == "DELETED":
        return "DELETED" if new_match or old_match else None
    if new_match and old_match:
        return "MODIFIED"
    if new_match:
        return "ADDED"
    return "DELETED" if old_match else None


async def serve_watch(
    request: web.Request,
    *,
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    predicate: Callable[[Mapping[str, Any]], bool],
    params: Mapping[str, str],
    sessions: set[WatchSession],
    bookmark_interval: float,
    default_timeout: float,
    render: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> web.StreamResponse:
    """Stream watch events of ``rt`` until timeout, fault or disconnect."""
    loop = asyncio.get_running_loop()
    rv = params.get("resourceVersion") or ""
    send_initial = params.get("sendInitialEvents") == "true"
    bookmarks = params.get("allowWatchBookmarks") == "true"
    try:
        timeout = float(params.get("timeoutSeconds") or default_timeout)
    except ValueError:
        timeout = default_timeout
    deadline = loop.time() + timeout
    session = WatchSession(rt, namespace)
    initial: list[dict[str, Any]] = []
    backlog: list[Change] = []
    expired: str | None = None
    ns = namespace if rt.namespaced else None

    from_version = rv not in {"", "0"} and not send_initial
    if from_version:
        try:
            wanted = int(rv)
        except ValueError:
            raise status.bad_request(f'invalid resource version "{rv}"') from None
        if wanted > store.revision:
            # The real watch cache waits briefly for a future version, then gives up so.
            raise EmulatedAPIError(
                504,
                "Timeout",
                f"Timeout: Too large resource version: {wanted}, current: {store.revision}",
                details={
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ],
                    "retryAfterSeconds": 1,
                },
            )
    with store.lock:
        start = store.revision
        if not from_version:
            initial = store.list(rt.storage, ns)
        else:
            try:
                start = int(rv)
                backlog = store.changes_since(start)
            except RevisionGone as exc:
                expired = str(exc)

        def notify(change: Change) -> None:
            if change.revision > start:
                session.queue.put_nowait(change)

        unsubscribe = store.subscribe(notify)
    session.last_revision = start
    sessions.add(session)

    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()

    def view(obj: dict[str, Any]) -> dict[str, Any]:
        shown = to_view(rt, obj)
        return render(shown) if render is not None else shown

    async def send(event: dict[str, Any]) -> None:
        await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def bookmark(extra_annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(session.last_revision)}
        if extra_annotations:
            meta["annotations"] = extra_annotations
        return {
            "type": "BOOKMARK",
            "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta},
        }

    def relevant(change: Change) -> str | None:
        if change.storage != rt.storage:
            return None
        if ns is not None and change.namespace != ns:
            return None
        return _classify(change, predicate)

    try:
        await response.prepare(request)
        if expired is not None:
            await send(gone_event(expired))
            return response
        for obj in initial:
            if predicate(obj):
                await send({"type": "ADDED", "object": view(obj)})
        if send_initial and bookmarks:
            await send(bookmark({"k8s.io/initial-events-end": "true"}))
        for change in backlog:
            session.last_revision = max(session.last_revision, change.revision)
            kind = relevant(change)
            if kind is not None:
                await send({"type": kind, "object": view(change.obj)})
        next_bookmark = loop.time() + bookmark_interval
        while True:
            if session.dropped:
                break
            if session.expired:
                message = (
                    f"too old resource version: {session.last_revision} ({store.oldest_revision})"
                )
                await send(gone_event(message))
                break
            now = loop.time()
            if now >= deadline:
                break
            if session.stall_until > now:
                session.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        session.wake.wait(), min(session.stall_until, deadline) - now
                    )
                continue
            wait = deadline - now
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                item = await asyncio.wait_for(session.queue.get(), wait)
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    await send(bookmark())
                    next_bookmark = loop.time() + bookmark_interval
                continue
            if item is None:
                continue
            # A stall that began while waiting still holds this event back.
            while session.stall_until > loop.time() and not (session.dropped or session.expired):
                session.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(session.wake.wait(), session.stall_until - loop.time())
            if session.dropped or session.expired:
                continue
            session.last_revision = max(session.last_revision, item.revision)
            kind = relevant(item)
            if kind is not None:
                await send({"type": kind, "object": view(item.obj)})
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe()
        sessions.discard(session)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
