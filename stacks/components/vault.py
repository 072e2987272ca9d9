"""Vault: the server (the hashicorp/vault chart, HA Raft auto-unsealed by KMS through IRSA; its
dev server on local stacks; or an existing Vault) and its configuration through
``pulumi_vault``: KV v2 and v1 mounts, the kubernetes auth method, per tenant the policy and
role of the tenant contract (:mod:`mirage_operator.tenancy`), and the database secrets engine
connected to RDS with a read-write and a read-only role per tenant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_vault as vault

from mirage_operator import tenancy
from stacks.components.cluster import irsa_assume_policy
from stacks.components.common import allow, child, helm_release, kms_key, named

NAMESPACE = "vault"
RELEASE = "vault"
CHART_REPOSITORY = "https://helm.releases.hashicorp.com"
IN_CLUSTER_ADDRESS = f"http://{RELEASE}.{NAMESPACE}.svc:8200"
KUBERNETES_HOST = "https://kubernetes.default.svc"
DATABASE_CONNECTION = "postgres"
READ_ONLY = "readonly"
"""Suffix of each tenant's read-only database role (``<namespace>.readonly``)."""


@dataclass(frozen=True)
class Database:
    """The PostgreSQL server Vault's database engine manages users on."""

    host: pulumi.Input[str]
    port: int
    username: str
    password: pulumi.Input[str]
    database: str = "postgres"
    sslmode: str = "require"


@dataclass(frozen=True)
class TenantRoles:
    """The Vault side of one tenant: its namespace and its extra read-write database roles
    (``<namespace>.<name>``, besides ``<namespace>`` and ``<namespace>.readonly``)."""

    namespace: str
    database_roles: tuple[str, ...] = ()


def creation_statements(namespace: str, *, read_only: bool) -> list[str]:
    """SQL creating a dynamic user of ``namespace`` (Vault fills ``{{name}}``, ``{{password}}``,
    ``{{expiration}}``). Each tenant owns the schema named after its namespace through a
    ``<namespace>_rw`` group role; read-only users get ``<namespace>_ro`` (``SELECT`` on every
    table, present and future). Nothing of other schemas is granted."""
    rw, ro = f'"{namespace}_rw"', f'"{namespace}_ro"'
    group = ro if read_only else rw
    statements = [
        f"DO $$ BEGIN CREATE ROLE {rw} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
        f"DO $$ BEGIN CREATE ROLE {ro} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
        f'CREATE SCHEMA IF NOT EXISTS "{namespace}" AUTHORIZATION {rw};',
        f'GRANT USAGE ON SCHEMA "{namespace}" TO {ro};',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA "{namespace}" TO {ro};',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE {rw} IN SCHEMA "{namespace}" '
        f"GRANT SELECT ON TABLES TO {ro};",
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
        f"VALID UNTIL '{{{{expiration}}}}' IN ROLE {group};",
        f'ALTER ROLE "{{{{name}}}}" SET search_path TO "{namespace}";',
    ]
    if not read_only:
        # Tables a user creates belong to the group, so the next credentials keep them.
        statements.append(f'ALTER ROLE "{{{{name}}}}" SET role TO {rw};')
    return statements


def revocation_statements(namespace: str) -> list[str]:
    """SQL dropping a dynamic user; whatever it still owns goes to ``<namespace>_rw``."""
    return [
        f'REASSIGN OWNED BY "{{{{name}}}}" TO "{namespace}_rw";',
        'DROP OWNED BY "{{name}}";',
        'DROP ROLE IF EXISTS "{{name}}";',
    ]


def database_roles(tenant: TenantRoles) -> dict[str, bool]:
    """The tenant's database roles: name to ``read_only``."""
    roles = {tenancy.database_role(tenant.namespace): False}
    roles[tenancy.database_role(tenant.namespace, READ_ONLY)] = True
    roles.update({tenancy.database_role(tenant.namespace, n): False for n in tenant.database_roles})
    return roles


def server_values(
    *,
    mode: str,
    replicas: int,
    kms_key_id: pulumi.Input[str] | None = None,
    region: pulumi.Input[str] | None = None,
    role_arn: pulumi.Input[str] | None = None,
    root_token: pulumi.Input[str] | None = None,
) -> dict[str, object]:
    """Values of the hashicorp/vault chart: ``helm`` (HA Raft, KMS auto-unseal through the
    IRSA role) or ``dev`` (the in-memory dev server with ``root_token``)."""
    common: dict[str, object] = {
        "global": {"enabled": True},
        "injector": {"enabled": False},  # the operator syncs secrets; no sidecars
        "ui": {"enabled": True},
    }
    if mode == "dev":
        return {**common, "server": {"dev": {"enabled": True, "devRootToken": root_token}}}
    config = pulumi.Output.all(kms_key_id, region).apply(
        lambda a: "\n".join(
            [
                "ui = true",
                'listener "tcp" {',
                '  address = "[::]:8200"',
                '  cluster_address = "[::]:8201"',
                "  tls_disable = 1",
                "}",
                'storage "raft" {',
                '  path = "/vault/data"',
                '  retry_join { leader_api_addr = "http://vault-0.vault-internal:8200" }',
                "}",
                'seal "awskms" {',
                f'  region = "{a[1]}"',
                f'  kms_key_id = "{a[0]}"',
                "}",
                'service_registration "kubernetes" {}',
            ]
        )
    )
    return {
        **common,
        "server": {
            "ha": {
                "enabled": True,
                "replicas": replicas,
                "raft": {"enabled": True, "setNodeId": True, "config": config},
            },
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role_arn}},
            "dataStorage": {"enabled": True, "size": "10Gi"},
            "auditStorage": {"enabled": True, "size": "10Gi"},
            "affinity": "",  # the chart's default anti-affinity needs one node per replica
        },
    }


class Vault(pulumi.ComponentResource):
    """Vault and its configuration for the tenants.

    Outputs: ``address`` (as pods reach it), ``auth_mount``, ``policies`` (tenant to policy
    name), ``roles`` (tenant to kubernetes auth role), ``database_mount`` (or None)."""

    address: pulumi.Output[str]
    auth_mount: pulumi.Output[str]
    policies: dict[str, pulumi.Output[str]]
    roles: dict[str, pulumi.Output[str]]
    database_mount: pulumi.Output[str] | None = None
    provider: vault.Provider
    """The provider Pulumi configures (and reads) this Vault with."""

    def __init__(
        self,
        name: str,
        *,
        mode: str,
        prod: bool,
        chart_version: str,
        tenants: Sequence[TenantRoles],
        auth_mount: str,
        admin_address: str,
        admin_token: pulumi.Input[str] | None,
        address: str = "",
        database: Database | None = None,
        oidc_provider_arn: pulumi.Input[str] | None = None,
        oidc_issuer: pulumi.Input[str] | None = None,
        tags: Mapping[str, str] = {},
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:vault:Vault", name, None, opts)
        depends: list[pulumi.Resource] = []
        if mode in {"helm", "dev"}:
            if mode == "dev" and admin_token is None:
                admin_token = random.RandomPassword(
                    f"{name}-dev-root-token", length=32, special=False, opts=child(self)
                ).result
            depends.append(
                self._server(
                    name,
                    mode,
                    prod,
                    chart_version,
                    admin_token,
                    oidc_provider_arn,
                    oidc_issuer,
                    tags,
                )
            )
            address = address or IN_CLUSTER_ADDRESS
        provider = vault.Provider(
            f"{name}-vault",
            address=admin_address,
            token=pulumi.Output.secret(admin_token) if admin_token is not None else None,
            skip_child_token=True,
            opts=child(self, depends_on=depends),
        )
        self.provider = provider
        options = child(self, provider=provider)
        mounts: dict[str, vault.Mount] = {}
        for path, engine in tenancy.MOUNTS.items():
            if engine == "database" and database is None:
                continue
            mounts[path] = vault.Mount(
                f"{name}-{path}",
                path=path,
                type="kv" if engine.startswith("kv") else engine,
                options={"version": "2"}
                if engine == "kv-v2"
                else ({"version": "1"} if engine == "kv-v1" else None),
                description=f"Mirage tenants' {engine} secrets",
                opts=options,
            )
        auth = vault.AuthBackend(
            f"{name}-kubernetes", type="kubernetes", path=auth_mount, opts=options
        )
        vault.kubernetes.AuthBackendConfig(
            f"{name}-kubernetes",
            backend=auth.path,
            # Vault runs in the cluster: its own ServiceAccount reviews tenants' tokens
            # (system:auth-delegator, granted by the chart) against the local API server.
            kubernetes_host=KUBERNETES_HOST,
            disable_local_ca_jwt=False,
            opts=options,
        )
        engines = {path: engine for path, engine in tenancy.MOUNTS.items() if path in mounts}
        self.policies, self.roles = {}, {}
        for tenant in tenants:
            ns = tenant.namespace
            policy = vault.Policy(
                f"{name}-{ns}",
                name=tenancy.vault_policy_name(ns),
                policy=tenancy.tenant_policy_hcl(ns, engines),
                opts=child(self, provider=provider, depends_on=list(mounts.values())),
            )
            role = vault.kubernetes.AuthBackendRole(
                f"{name}-{ns}",
                backend=auth.path,
                role_name=tenancy.vault_role(ns),
                bound_service_account_names=[tenancy.SERVICE_ACCOUNT],
                bound_service_account_namespaces=[ns],
                audience=tenancy.TOKEN_AUDIENCE,
                token_policies=[policy.name],
                # Vault's default policy lets a token renew any lease by ID: not for tenants.
                token_no_default_policy=True,
                token_ttl=3600,
                token_max_ttl=86400,
                opts=options,
            )
            self.policies[ns] = policy.name
            self.roles[ns] = role.role_name
        if database is not None:
            self.database_mount = self._database(
                name, mounts["database"], database, tenants, options
            )
        self.address = pulumi.Output.from_input(address)
        self.auth_mount = auth.path
        self.register_outputs(
            {"address": self.address, "auth_mount": self.auth_mount, "roles": self.roles}
        )

    def _server(
        self,
        name: str,
        mode: str,
        prod: bool,
        chart_version: str,
        root_token: pulumi.Input[str] | None,
        oidc_provider_arn: pulumi.Input[str] | None,
        oidc_issuer: pulumi.Input[str] | None,
        tags: Mapping[str, str],
    ) -> k8s.helm.v3.Release:
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": NAMESPACE}, opts=child(self)
        )
        if mode == "dev":
            values = server_values(mode="dev", replicas=1, root_token=root_token)
        else:
            key = kms_key(
                self, f"{name}-unseal", purpose=f"{name}: Vault auto-unseal", tags=tags,
                protect=prod,
            )  # fmt: skip
            role = aws.iam.Role(
                f"{name}-unseal",
                assume_role_policy=pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
                    lambda a: irsa_assume_policy(
                        provider_arn=a[0], issuer=a[1], subjects=[f"{NAMESPACE}:{RELEASE}"]
                    )
                ),
                tags=named(tags, f"{name}-unseal"),
                opts=child(self),
            )
            allow(
                self,
                f"{name}-unseal",
                role=role,
                actions=["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
                resources=[key.arn],
            )
            region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
            values = server_values(
                mode="helm",
                replicas=3 if prod else 1,
                kms_key_id=key.key_id,
                region=region.region,
                role_arn=role.arn,
            )
        return helm_release(
            self, f"{name}-server", release=RELEASE, namespace=namespace.metadata["name"],
            chart="vault", version=chart_version, repository=CHART_REPOSITORY, values=values,
        )  # fmt: skip

    def _database(
        self,
        name: str,
        mount: vault.Mount,
        database: Database,
        tenants: Sequence[TenantRoles],
        options: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        roles = {role: read_only for t in tenants for role, read_only in database_roles(t).items()}
        url = pulumi.Output.concat(
            "postgresql://{{username}}:{{password}}@",
            database.host,
            f":{database.port}/",
            database.database,
            f"?sslmode={database.sslmode}",
        )
        connection = vault.database.SecretBackendConnection(
            f"{name}-{DATABASE_CONNECTION}",
            backend=mount.path,
            name=DATABASE_CONNECTION,
            allowed_roles=sorted(roles),
            verify_connection=True,
            postgresql={
                "connection_url": url,
                "username": database.username,
                "password": pulumi.Output.secret(database.password),
            },
            opts=options,
        )
        for tenant in tenants:
            for role, read_only in database_roles(tenant).items():
                vault.database.SecretBackendRole(
                    f"{name}-db-{role}",
                    backend=mount.path,
                    name=role,
                    db_name=connection.name,
                    creation_statements=creation_statements(tenant.namespace, read_only=read_only),
                    revocation_statements=revocation_statements(tenant.namespace),
                    default_ttl=3600,
                    max_ttl=86400,
                    opts=options,
                )
        return mount.path
