"""The tenant contract: the names the operator and the platform that hosts it must agree on.

Defined once, here, and used by the operator's defaults (:mod:`mirage_operator.config`), the
Pulumi stacks (``stacks/components/vault.py``, ``tenants.py``, ``operator.py``) and the tenant
set-up of ``mirage sandbox`` and the e2e tests (:mod:`mirage_sandbox.tenants`). Pure:
no I/O, no imports of the emulators. ADR 0102 records why each name is what it is.

For a tenant namespace ``N``:

- the operator requests a token of the ServiceAccount :data:`SERVICE_ACCOUNT` in ``N`` with
  audience :data:`TOKEN_AUDIENCE` and logs in at ``auth/<AUTH_MOUNT>/login`` with the role
  :func:`vault_role` (``mirage-N``), bound to exactly that ServiceAccount name and namespace;
- the role's token carries only the policy :func:`vault_policy_name` (``tenant-N``, no
  ``default`` policy: Vault's ``default`` lets a token renew *any* lease by ID, through
  ``sys/leases/renew`` with the ID in the body), whose rules :func:`tenant_policy_rules` gives:
  ``read`` on ``<kv-v2 mount>/data/N/*``, ``<kv-v1 mount>/N/*`` and
  ``<database mount>/creds/N`` / ``creds/N.*``; ``update`` on
  ``sys/leases/renew/<database mount>/creds/N/*`` (and ``N.*``) and the same under
  ``sys/leases/revoke/``, so a tenant renews and revokes its own leases only (Vault lease IDs
  are ``<mount>/creds/<role>/<id>``; the operator calls the path forms
  ``sys/leases/renew/<lease id>`` and ``sys/leases/revoke/<lease id>``, never the body forms
  that no policy can scope); and its own token's ``lookup-self``, ``renew-self``,
  ``revoke-self``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

AUTH_MOUNT = "kubernetes"
"""Mount path of Vault's kubernetes auth method."""

VAULT_ROLE_TEMPLATE = "mirage-{namespace}"
"""Vault kubernetes auth role of a tenant namespace; ``{namespace}`` is replaced."""

VAULT_POLICY_TEMPLATE = "tenant-{namespace}"
"""Vault policy of a tenant namespace; ``{namespace}`` is replaced."""

SERVICE_ACCOUNT = "mirage-vault"
"""ServiceAccount, in each tenant namespace, whose short-lived token logs in to Vault."""

TOKEN_AUDIENCE = "vault"  # noqa: S105 (an audience, not a secret)
"""Audience of the ServiceAccount tokens the operator requests for Vault logins (and the
audience every tenant role requires)."""

KV_PATH_TEMPLATES: tuple[str, ...] = ("{namespace}/*",)
"""Globs of the KV paths (under every KV mount) a tenant may read."""

DATABASE_ROLE_TEMPLATES: tuple[str, ...] = ("{namespace}", "{namespace}.*")
"""Globs of the database roles a tenant may use. A dot separates: namespace names cannot hold
one, so ``team`` never matches ``team-a``'s roles."""

MOUNTS: Mapping[str, str] = {"secret": "kv-v2", "kv": "kv-v1", "database": "database"}
"""The secrets engines the platform mounts (mount path to engine)."""


MONITORING_LABELS: tuple[tuple[str, str], ...] = (("release", "kube-prometheus-stack"),)
"""Labels on every ServiceMonitor and PrometheusRule the operator writes; the Prometheus of
the platform selects exactly these."""

DASHBOARD_LABELS: tuple[tuple[str, str], ...] = (("grafana_dashboard", "1"),)
"""Labels on every Grafana dashboard ConfigMap; the Grafana sidecar selects exactly these."""

INGRESS_CLASS = "traefik"
"""IngressClass of every Ingress the operator writes; the platform's ingress controller
serves it."""

TOKEN_SELF_RULES: Mapping[str, tuple[str, ...]] = {
    "auth/token/lookup-self": ("read",),
    "auth/token/renew-self": ("update",),
    "auth/token/revoke-self": ("update",),
}
"""What a tenant token may do to itself (given here because tenant roles carry no
``default`` policy)."""


def vault_role(namespace: str, template: str = VAULT_ROLE_TEMPLATE) -> str:
    """The Vault role ``namespace`` logs in with."""
    return template.format(namespace=namespace)


def database_role(namespace: str, name: str = "") -> str:
    """A database role of ``namespace``: ``N`` itself, or ``N.<name>`` (both within
    :data:`DATABASE_ROLE_TEMPLATES`)."""
    return f"{namespace}.{name}" if name else namespace


def vault_policy_name(namespace: str) -> str:
    """The Vault policy of ``namespace``."""
    return VAULT_POLICY_TEMPLATE.format(namespace=namespace)


def _prefix_glob(template: str, namespace: str, what: str) -> str:
    # Vault policy paths allow ``*`` only as the last character (a prefix match).
    glob = template.format(namespace=namespace)
    if "*" in glob[:-1] or "+" in glob:
        raise ValueError(f"{what} {template!r}: '*' is allowed only at the end in Vault policies")
    return glob


def tenant_policy_rules(
    namespace: str,
    mounts: Mapping[str, str] = MOUNTS,
    *,
    kv_paths: Iterable[str] = KV_PATH_TEMPLATES,
    database_roles: Iterable[str] = DATABASE_ROLE_TEMPLATES,
) -> dict[str, tuple[str, ...]]:
    """A tenant's Vault policy: path glob to capabilities, for each mount by its engine
    (``kv-v2``, ``kv-v1``, ``database``), from the same templates as the operator's
    allowed-path check. Raises ``ValueError`` for an unknown engine or a template Vault
    cannot express (``*`` before the end)."""
    kv = [_prefix_glob(t, namespace, "KV path template") for t in kv_paths]
    roles = [_prefix_glob(t, namespace, "database role template") for t in database_roles]
    rules: dict[str, tuple[str, ...]] = {}
    for mount, engine in sorted(mounts.items()):
        if engine == "kv-v2":
            rules.update({f"{mount}/data/{glob}": ("read",) for glob in kv})
        elif engine == "kv-v1":
            rules.update({f"{mount}/{glob}": ("read",) for glob in kv})
        elif engine == "database":
            for role in roles:
                rules[f"{mount}/creds/{role}"] = ("read",)
                # Lease IDs are <mount>/creds/<role>/<id>; a role glob already ends in ``*``.
                lease = f"{mount}/creds/{role}" if role.endswith("*") else f"{mount}/creds/{role}/*"
                rules[f"sys/leases/renew/{lease}"] = ("update",)
                rules[f"sys/leases/revoke/{lease}"] = ("update",)
        else:
            raise ValueError(f"mount {mount!r}: unknown engine {engine!r}")
    rules.update(TOKEN_SELF_RULES)
    return rules


def policy_hcl(rules: Mapping[str, Iterable[str]]) -> str:
    """Render policy rules as Vault HCL (one ``path`` block per rule, sorted)."""
    return "".join(
        f'path "{path}" {{\n  capabilities = {json.dumps(list(caps))}\n}}\n'
        for path, caps in sorted(rules.items())
    )


def tenant_policy_hcl(namespace: str, mounts: Mapping[str, str] = MOUNTS) -> str:
    """The HCL of :func:`tenant_policy_rules` with the contract's templates."""
    return policy_hcl(tenant_policy_rules(namespace, mounts))


def labels_arg(labels: Iterable[tuple[str, str]]) -> str:
    """Labels as the operator's ``k=v,k2=v2`` environment form."""
    return ",".join(f"{key}={value}" for key, value in labels)
