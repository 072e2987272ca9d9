"""The operator's own allowed-path check: defense in depth in front of Vault policy.

Before any Vault call, the path a custom resource names is matched against the configured
templates for its namespace (by default ``{namespace}/*`` for KV paths under any mount and
``{namespace}`` or ``{namespace}.*`` for database roles). Vault policy remains the real
boundary; this check makes a mistake (or a hostile spec) fail fast, with a clear message,
and without a request that Vault would log as a denial.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mirage_operator.api.vaultsecret import VaultSource
from mirage_operator.config import Config
from mirage_operator.errors import VaultPathNotAllowed

RESERVED_MOUNTS = frozenset({"sys", "auth", "identity", "cubbyhole"})
"""Mounts that hold Vault's own machinery, never a tenant's secrets."""


def glob_matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern``, where ``*`` matches any run of characters
    (``/`` included, as in Vault policies) and everything else is literal."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, path, flags=re.DOTALL) is not None


def _segments_ok(path: str) -> bool:
    segments = path.split("/")
    return all(s and s not in {".", ".."} for s in segments)


def allowed_patterns(config: Config, namespace: str, engine: str) -> tuple[str, ...]:
    """The globs ``namespace`` may read for ``engine``, templates expanded."""
    templates: Iterable[str] = (
        config.vault_allowed_database_roles if engine == "database" else config.vault_allowed_paths
    )
    return tuple(t.format(namespace=namespace) for t in templates)


def check_allowed(
    config: Config, namespace: str, source: VaultSource, *, field: str = "spec.vault.path"
) -> None:
    """Raise :class:`VaultPathNotAllowed` unless ``namespace`` may read ``source``."""
    if not _segments_ok(source.mount) or source.mount.split("/")[0] in RESERVED_MOUNTS:
        raise VaultPathNotAllowed(
            field.rpartition(".")[0] + ".mount",
            f"Forbidden: mount {source.mount!r} is not a secrets engine a VaultSecret may read",
        )
    if not _segments_ok(source.path) or (source.engine == "database" and "/" in source.path):
        raise VaultPathNotAllowed(field, f"Invalid value: malformed Vault path {source.path!r}")
    patterns = allowed_patterns(config, namespace, source.engine)
    if not any(glob_matches(p, source.path) for p in patterns):
        what = "database role" if source.engine == "database" else "path"
        raise VaultPathNotAllowed(
            field,
            f"Forbidden: namespace {namespace!r} may not read Vault {what} {source.path!r} "
            f"(allowed: {', '.join(patterns)})",
        )
