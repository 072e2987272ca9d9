"""What the operator process remembers of each VaultSecret between reconciles: what status
cannot say (the lease's token, the sub-second sync time), or says too late (the status just
written, while its watch event is on its way). A new process starts with none of it and
rebuilds what it needs from status (docs/adr/0063).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirage_operator.vault import Lease


@dataclass
class Memory:
    """What this process remembers of one VaultSecret."""

    uid: str
    status: dict[str, Any] | None = None
    """The status as last written: fresher than a body whose watch event is still on its way."""
    synced_at: float | None = None
    """When Vault was last read successfully (to the sub-second; status keeps whole seconds)."""
    lease: Lease | None = None
    """The current lease of a leased source, with what status cannot keep (its token)."""
    checked: bool = False
    """Whether the object has been reconciled successfully since the operator started."""
    secret_version: str | None = None
    """resourceVersion of the Secret as the operator last wrote it (its watch echo is not
    a reason to reconcile)."""
    taken: str | None = None
    """A destination name a create found taken by a Secret without Mirage's label (which the
    watch does not show): read before Vault from then on, until a write succeeds."""


class Memories(dict[tuple[str, str], Memory]):
    """The memory of every VaultSecret, by ``(namespace, name)``."""

    def remember(self, namespace: str, name: str, uid: str) -> Memory:
        """The memory of ``namespace/name``; a new object of the same name starts afresh."""
        memory = self.get((namespace, name))
        if memory is None or memory.uid != uid:
            memory = self[namespace, name] = Memory(uid=uid)
        return memory

    def status(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status as this process last wrote it, else the body's."""
        meta = body["metadata"]
        memory = self.get((meta["namespace"], meta["name"]))
        if memory is not None and memory.uid == meta["uid"] and memory.status is not None:
            return memory.status
        return body.get("status") or {}

    def secret_changed(self, namespace: str, owner: str, secret: Mapping[str, Any]) -> bool:
        """Whether an event of ``owner``'s Secret is news (not the echo of our own write)."""
        memory = self.get((namespace, owner))
        version = secret["metadata"].get("resourceVersion")
        return memory is None or memory.secret_version != version
