"""The platform's composition: settings in, components wired output to input, stack outputs out.

Layers (ADR 0101): Network → Cluster → DataStores (cloud) → Mesh → Vault, Ingress,
Observability, OAuth2Proxy → Tenants → MirageOperator. Each layer takes only the outputs of
the layers below as arguments; no component reads configuration or another component's
internals.
"""

from __future__ import annotations

import pulumi
import pulumi_vault.kv as vault_kv

from mirage_operator import tenancy
from stacks import settings as config
from stacks.components.cluster import Cluster
from stacks.components.common import stack_tags
from stacks.components.datastores import POSTGRES_ADMIN, DataStores
from stacks.components.ingress import Ingress
from stacks.components.mesh import Mesh
from stacks.components.network import Network
from stacks.components.oauth2_proxy import OAuth2Proxy
from stacks.components.observability import Observability
from stacks.components.operator import MirageOperator, operator_values
from stacks.components.tenants import Tenants
from stacks.components.vault import Database, TenantRoles, Vault


def compose(settings: config.Settings | None = None) -> None:
    """Declare the platform for ``settings`` (default: the stack's configuration) and export
    the stack outputs: ``kubeconfig`` (secret), ``vaultAddress``, ``vaultAuthMount``,
    ``dataStoreEndpoints``, ``grafanaUrl``, ``opensearchDashboardsUrl``, ``tenants``,
    ``ingressClass``, ``meshTrustDomain`` (None without the mesh), ``oauth2ProxyUrl`` and
    ``signInUrl`` (None without OAuth2 Proxy)."""
    s = settings or config.load()
    tags = stack_tags(s.tags, environment=s.environment)
    network = data = None
    if s.cloud:
        network = Network(
            "network",
            cidr=s.vpc_cidr,
            zones=s.availability_zones,
            nat_per_zone=s.prod,
            log_retention_days=365 if s.prod else 30,
            tags=tags,
        )
        cluster = Cluster(
            "cluster",
            version=s.kubernetes_version,
            subnet_ids=network.private_subnet_ids,
            public_access_cidrs=s.public_access_cidrs if s.public_endpoint else (),
            node_groups=s.node_groups,
            tags=tags,
        )
        assert cluster.security_group_id is not None
        data = DataStores(
            "data",
            stores=s.stores,
            prod=s.prod,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            cluster_security_group_id=cluster.security_group_id,
            tags=tags,
        )
    else:
        cluster = Cluster("cluster", existing_kubeconfig=s.kubeconfig)
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
    mesh = None
    if s.mesh.enabled:
        mesh = Mesh(
            "mesh",
            trust_domain=s.mesh.trust_domain,
            chart_version=s.charts.istio,
            prod=s.prod,
            opts=on_cluster,
        )
    database = None
    if data is not None and data.postgres_host is not None:
        assert data.postgres_password is not None
        database = Database(
            host=data.postgres_host,
            port=5432,
            username=POSTGRES_ADMIN,
            password=data.postgres_password,
        )
    vault = Vault(
        "vault",
        mode=s.vault_mode,
        prod=s.prod,
        chart_version=s.charts.vault,
        tenants=[TenantRoles(t.name, t.database_roles) for t in s.tenants],
        auth_mount=s.vault_auth_mount,
        admin_address=s.vault_admin_address,
        admin_token=s.vault_token,
        address=s.vault_address,
        database=database,
        oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer=cluster.oidc_issuer,
        tags=tags,
        opts=on_cluster,
    )
    ingress = Ingress(
        "ingress",
        ingress_class=tenancy.INGRESS_CLASS,
        chart_version=s.charts.traefik,
        cloud=s.cloud,
        prod=s.prod,
        mesh=mesh is not None,
        # Traefik's pods are created once the injector can give them their sidecar.
        opts=pulumi.ResourceOptions(
            providers={"kubernetes": cluster.provider}, depends_on=[mesh] if mesh else []
        ),
    )
    proxy = None
    if s.oauth2_proxy is not None:
        o = s.oauth2_proxy
        client_secret = o.client_secret
        if o.client_secret_vault is not None:
            ref = o.client_secret_vault
            # Read when Pulumi runs, after Vault is configured; secret in the state.
            secret = vault_kv.get_secret_v2_output(
                mount=ref.mount,
                name=ref.path,
                opts=pulumi.InvokeOutputOptions(provider=vault.provider, depends_on=[vault]),
            )
            client_secret = pulumi.Output.secret(secret.data.apply(lambda d: str(d[ref.key])))
        assert client_secret is not None
        proxy = OAuth2Proxy(
            "oauth2-proxy",
            issuer_url=o.issuer_url,
            client_id=o.client_id,
            client_secret=client_secret,
            host=o.host,
            cookie_domain=o.cookie_domain,
            email_domains=o.email_domains,
            ingress_class=ingress.ingress_class,
            chart_version=s.charts.oauth2_proxy,
            prod=s.prod,
            opts=on_cluster,
        )
    observability = Observability(
        "observability",
        prod=s.prod,
        charts=vars(s.charts),
        monitoring_labels=dict(tenancy.MONITORING_LABELS),
        dashboard_labels=dict(tenancy.DASHBOARD_LABELS),
        ingress_class=tenancy.INGRESS_CLASS,
        grafana_host=s.grafana_host,
        opensearch_endpoint=data.opensearch_endpoint if data else None,
        opensearch_password=data.opensearch_password if data else None,
        opensearch_dashboards_host=s.opensearch_dashboards_host,
        opts=on_cluster,
    )
    tenants = Tenants("tenants", tenants=s.tenants, opts=on_cluster)
    MirageOperator(
        "operator",
        values=operator_values(
            vault_address=vault.address,
            vault_auth_mount=vault.auth_mount,
            ingress_class=ingress.ingress_class,
            ingress_namespace=ingress.namespace,
            prometheus_namespace=observability.prometheus_namespace,
            mesh_default=s.mesh.join_by_default,
            # The operator names callers in the trust domain Istio issues identities in.
            mesh_trust_domain=mesh.trust_domain if mesh else s.mesh.trust_domain,
            oauth2_proxy_url=proxy.url if proxy else None,
            oauth2_proxy_service=proxy.service if proxy else None,
            monitoring=True,
            watch_namespaces=(),
            image=s.operator_image,
            version=s.operator_version,
        ),
        opts=pulumi.ResourceOptions(
            providers={"kubernetes": cluster.provider}, depends_on=[tenants, vault]
        ),
    )
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("vaultAddress", vault.address)
    pulumi.export("vaultAuthMount", vault.auth_mount)
    pulumi.export("dataStoreEndpoints", data.endpoints if data else {})
    pulumi.export("grafanaUrl", observability.grafana_url)
    pulumi.export("opensearchDashboardsUrl", observability.opensearch_dashboards_url)
    pulumi.export("tenants", tenants.namespaces)
    pulumi.export("ingressClass", ingress.ingress_class)
    pulumi.export("meshTrustDomain", mesh.trust_domain if mesh else None)
    pulumi.export("oauth2ProxyUrl", proxy.url if proxy else None)
    pulumi.export("signInUrl", proxy.sign_in_url if proxy else None)
