"""The operator's own allowed-path check: defense in depth in front of Vault policy.

Before any Vault call, the path a custom resource names is matched against the configured
templates for its namespace (by default ``{namespace}/*`` for KV paths under any mount and
``{namespace}`` or ``{namespace}.*`` for database roles). The mount must be one path segment
and the path normalised, so that the path matched is the one Vault reads (docs/adr/0068).
Vault policy remains the real boundary; this check makes a mistake (or a hostile spec) fail
fast, with a clear message, and without a request that Vault would log as a denial.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mirage_operator.api.vaultsecret import VaultSource, vault_source_problems
from mirage_operator.config import Config
from mirage_operator.errors import VaultPathNotAllowed

RESERVED_MOUNTS = frozenset({"sys", "auth", "identity", "cubbyhole"})
"""Mounts that hold Vault's own machinery, never a tenant's secrets."""


def glob_matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern``, where ``*`` matches any run of characters
    (``/`` included, as in Vault policies) and everything else is literal."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, path, flags=re.DOTALL) is not None


def allowed_patterns(config: Config, namespace: str, engine: str) -> tuple[str, ...]:
    """The globs ``namespace`` may read for ``engine``, templates expanded."""
    templates: Iterable[str] = (
        config.vault_allowed_database_roles if engine == "database" else config.vault_allowed_paths
    )
    return tuple(t.format(namespace=namespace) for t in templates)


def check_allowed(
    config: Config, namespace: str, source: VaultSource, *, field: str = "spec.vault.path"
) -> None:
    """Raise :class:`VaultPathNotAllowed` unless ``namespace`` may read ``source``.

    The request path Vault sees is ``<mount>/<path>`` (kv-v1), ``<mount>/data/<path>``
    (kv-v2) or ``<mount>/creds/<role>`` (database): with a one-segment mount and a normalised
    path, the path under the mount that the globs are matched against is exactly the one
    Vault reads, whatever the auth mode (docs/adr/0068)."""
    prefix = field.rpartition(".")[0]
    problems = vault_source_problems(source.engine, source.mount, source.path, prefix=prefix)
    if problems:
        raise VaultPathNotAllowed(problems[0].field, problems[0].reason)
    if source.mount in RESERVED_MOUNTS:
        raise VaultPathNotAllowed(
            f"{prefix}.mount",
            f"Forbidden: mount {source.mount!r} is not a secrets engine a VaultSecret may read",
        )
    patterns = allowed_patterns(config, namespace, source.engine)
    if not any(glob_matches(p, source.path) for p in patterns):
        what = "database role" if source.engine == "database" else "path"
        raise VaultPathNotAllowed(
            field,
            f"Forbidden: namespace {namespace!r} may not read Vault {what} {source.path!r} "
            f"(allowed: {', '.join(patterns)})",
        )
