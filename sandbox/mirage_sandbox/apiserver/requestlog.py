"""The request log: every call the emulated API server answered, for tests to count.

Records hold the method, path, query, content type, answered status, whether it was a dry
run, and the parsed verb/resource/namespace/name. Never bodies: Secrets and tokens travel in
bodies, and must not reach logs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass
class RequestRecord:
    """One answered request."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    status: int = 0
    dry_run: bool = False
    verb: str | None = None
    group: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""
    field_manager: str = ""
    user_agent: str = ""
    time: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def is_write(self) -> bool:
        """A create/update/patch/delete that was not a dry run."""
        return self.verb in WRITE_VERBS and not self.dry_run


class RequestLog:
    """Thread-safe, append-only list of :class:`RequestRecord` (bounded)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._limit = limit

    def add(self, record: RequestRecord) -> None:
        """Append a record (the oldest go beyond the limit)."""
        with self._lock:
            self._records.append(record)
            if len(self._records) > self._limit:
                del self._records[: len(self._records) - self._limit]

    def clear(self) -> None:
        """Forget every record (e.g. once a test reaches steady state)."""
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[RequestRecord]:
        with self._lock:
            return iter(list(self._records))

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def writes(
        self,
        resource: str | None = None,
        namespace: str | None = None,
        *,
        since: float = 0.0,
        successful_only: bool = False,
    ) -> list[RequestRecord]:
        """Write calls (not dry runs), optionally for one resource (plural) / namespace."""
        return [
            r
            for r in self
            if r.is_write
            and (resource is None or r.resource == resource)
            and (namespace is None or r.namespace == namespace)
            and r.time >= since
            and (not successful_only or r.status < 400)
        ]
