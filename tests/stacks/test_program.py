"""The program under mocks, per stack file: which components and resources each config asks
for (and no others), their wiring, the invariants on every resource, the stack outputs."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
import yaml

from mirage_operator import tenancy
from stacks.policy.policies import taggable
from stacks.settings import REQUIRED_TAGS, Settings, SettingsError, parse
from tests.stacks.conftest import SECRETS
from tests.stacks.harness import Built, Registered, build, stack_config

COMPONENTS = {
    "mirage:network:Network",
    "mirage:cluster:Cluster",
    "mirage:data:DataStores",
    "mirage:vault:Vault",
    "mirage:observability:Observability",
    "mirage:ingress:Ingress",
    "mirage:operator:MirageOperator",
    "mirage:tenants:Tenants",
    "mirage:mesh:Mesh",
    "mirage:oauth2proxy:OAuth2Proxy",
}
CLOUD_ONLY = {"mirage:network:Network", "mirage:data:DataStores"}
LOCAL_OFF = {"mirage:mesh:Mesh", "mirage:oauth2proxy:OAuth2Proxy"}
"""Off in Pulumi.local.yaml: no Istio on a laptop cluster by default, no IdP configured."""
STORE_TYPES = {
    "postgres": "aws:rds/instance:Instance",
    "mongodb": "aws:docdb/cluster:Cluster",
    "redis": "aws:elasticache/replicationGroup:ReplicationGroup",
    "rabbitmq": "aws:mq/broker:Broker",
    "opensearch": "aws:opensearch/domain:Domain",
}


def components(built: Built) -> set[str]:
    return {r.type for r in built if not r.custom and r.type.startswith("mirage:")}


def test_cloud_stacks_compose_every_component(dev: Built, prod: Built) -> None:
    assert components(dev) == COMPONENTS
    assert components(prod) == COMPONENTS


def test_local_stack_has_no_cloud_resource(local: Built) -> None:
    assert components(local) == COMPONENTS - CLOUD_ONLY - LOCAL_OFF
    assert not [r for r in local if r.type.startswith("aws:")]
    # Vault's dev server in the cluster, configured for the tenants.
    release = [
        r for r in local.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "vault"
    ]
    assert release[0].inputs["values"]["server"]["dev"]["enabled"] is True
    assert local.outputs["dataStoreEndpoints"] == {}


def test_every_resource_is_parented_under_its_component(stack: Built) -> None:
    for resource in stack:
        if resource.type.startswith("mirage:"):
            assert resource.parent_types == ("pulumi:pulumi:Stack",)  # off the stack
        else:
            assert resource.component in COMPONENTS, resource


@pytest.mark.parametrize(("name", "zones", "nats"), [("dev", 1, 1), ("prod", 3, 3)])
def test_network_spans_the_configured_zones(name: str, zones: int, nats: int) -> None:
    from tests.stacks.conftest import built

    stack = built(name)
    subnets = stack.of_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 2 * zones
    assert len({s.inputs["availabilityZone"] for s in subnets}) == zones
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in subnets)
    assert len(stack.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert stack.one("aws:ec2/flowLog:FlowLog").inputs["trafficType"] == "ALL"


def test_every_store_is_switchable_off() -> None:
    for store, kind in STORE_TYPES.items():
        built = build("dev", overrides={"mirage:dataStores": {store: False}}, secrets=SECRETS)
        assert not built.of_type(kind), store
        others = set(STORE_TYPES) - {store}
        assert all(built.of_type(STORE_TYPES[o]) for o in others)
        assert store not in built.outputs["dataStoreEndpoints"]
        if store == "postgres":  # no RDS, no database secrets engine
            assert not built.of_type("vault:database/secretBackendRole:SecretBackendRole")
            assert "database" not in {
                m.inputs["path"] for m in built.of_type("vault:index/mount:Mount")
            }
        if store == "opensearch":  # no OpenSearch, no log shipping
            charts = {r.inputs["chart"] for r in built.of_type("kubernetes:helm.sh/v3:Release")}
            assert not {"fluent-bit", "opensearch-dashboards"} & charts


def test_stores_are_private_encrypted_and_protected_in_prod(dev: Built, prod: Built) -> None:
    for stack, is_prod in ((dev, False), (prod, True)):
        pg = stack.one(STORE_TYPES["postgres"]).inputs
        assert pg["publiclyAccessible"] is False and pg["storageEncrypted"] is True
        assert pg["multiAz"] is is_prod and pg["deletionProtection"] is is_prod
        docdb = stack.one(STORE_TYPES["mongodb"]).inputs
        assert docdb["storageEncrypted"] is True and docdb["deletionProtection"] is is_prod
        assert len(stack.of_type("aws:docdb/clusterInstance:ClusterInstance")) == (
            3 if is_prod else 1
        )
        redis = stack.one(STORE_TYPES["redis"]).inputs
        assert (
            redis["transitEncryptionEnabled"] is True and redis["atRestEncryptionEnabled"] is True
        )
        assert redis["authToken"] and redis["multiAzEnabled"] is is_prod
        mq = stack.one(STORE_TYPES["rabbitmq"]).inputs
        assert mq["publiclyAccessible"] is False
        assert mq["deploymentMode"] == ("CLUSTER_MULTI_AZ" if is_prod else "SINGLE_INSTANCE")
        search = stack.one(STORE_TYPES["opensearch"]).inputs
        assert search["vpcOptions"]["subnetIds"] and search["encryptAtRest"]["enabled"] is True
        assert search["clusterConfig"]["zoneAwarenessEnabled"] is is_prod
        for group in stack.of_type("aws:ec2/securityGroup:SecurityGroup"):
            for rule in group.inputs["ingress"]:
                assert rule["securityGroups"] == ["sg-cluster"] and not rule.get("cidrBlocks")


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (STORE_TYPES["postgres"], "password"),
        (STORE_TYPES["mongodb"], "masterPassword"),
        (STORE_TYPES["redis"], "authToken"),
        (STORE_TYPES["rabbitmq"], "users[0].password"),
        (STORE_TYPES["opensearch"], "advancedSecurityOptions.masterUserOptions.masterUserPassword"),
        ("vault:database/secretBackendConnection:SecretBackendConnection", "postgresql.password"),
    ],
)
def test_passwords_are_random_and_secret(dev: Built, kind: str, field: str) -> None:
    resource = dev.one(kind)
    # The field is secret, or an object holding it is (secrecy wraps the nearest Output).
    assert any(field == s or field.startswith((f"{s}.", f"{s}[")) for s in resource.secrets)
    value: Any = resource.inputs
    for part in field.replace("[0]", ".0").split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    assert value == "x" * 40  # the mocked RandomPassword's result


def test_eks_endpoint_private_in_prod_and_secrets_encrypted(dev: Built, prod: Built) -> None:
    for stack, public in ((dev, True), (prod, False)):
        eks = stack.one("aws:eks/cluster:Cluster").inputs
        assert eks["vpcConfig"]["endpointPrivateAccess"] is True
        assert eks["vpcConfig"]["endpointPublicAccess"] is public
        assert eks["encryptionConfig"]["resources"] == ["secrets"]
        assert stack.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs[
            "clientIdLists"
        ] == ["sts.amazonaws.com"]
    assert dev.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["publicAccessCidrs"] == [
        "203.0.113.0/24"
    ]
    assert len(prod.of_type("aws:eks/nodeGroup:NodeGroup")) == 2
    for template in prod.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"


def test_default_storage_class_is_encrypted_on_eks(dev: Built, local: Built) -> None:
    [gp3] = dev.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert gp3.inputs["parameters"]["encrypted"] == "true" and gp3.inputs["parameters"]["kmsKeyId"]
    assert (
        gp3.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "true"
    )
    [gp2] = dev.of_type("kubernetes:storage.k8s.io/v1:StorageClassPatch")
    assert (
        gp2.inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]
        == "false"
    )
    assert not local.of_type("kubernetes:storage.k8s.io/v1:StorageClass")  # the cluster's own


def test_kms_keys_rotate(stack: Built) -> None:
    for key in stack.of_type("aws:kms/key:Key"):
        assert key.inputs["enableKeyRotation"] is True, key.name


def test_every_taggable_resource_is_tagged(stack: Built) -> None:
    tagged = [r for r in stack if r.type.startswith("aws:") and taggable(r.type)]
    assert bool(tagged) is (stack.stack != "local")
    for resource in tagged:
        tags = resource.inputs.get("tags") or {}
        for key in (*REQUIRED_TAGS, "mirage:stack", "mirage:environment", "managed-by"):
            assert tags.get(key), f"{resource.type} {resource.name} lacks tag {key}"
        assert tags["mirage:stack"] == stack.stack


def test_vault_is_configured_per_tenant_by_the_contract(stack: Built) -> None:
    tenants = [
        t["name"] if isinstance(t, dict) else t for t in stack_config(stack.stack)["mirage:tenants"]
    ]
    roles = {
        r.inputs["roleName"]: r.inputs
        for r in stack.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")
    }
    assert set(roles) == {tenancy.vault_role(t) for t in tenants}
    for tenant in tenants:
        role = roles[tenancy.vault_role(tenant)]
        assert role["boundServiceAccountNames"] == [tenancy.SERVICE_ACCOUNT]
        assert role["boundServiceAccountNamespaces"] == [tenant]
        assert role["audience"] == tenancy.TOKEN_AUDIENCE
        assert role["tokenNoDefaultPolicy"] is True
        assert role["tokenPolicies"] == [tenancy.vault_policy_name(tenant)]
    policies = {
        p.inputs["name"]: p.inputs["policy"] for p in stack.of_type("vault:index/policy:Policy")
    }
    mounts = {m.inputs["path"] for m in stack.of_type("vault:index/mount:Mount")}
    engines = {k: v for k, v in tenancy.MOUNTS.items() if k in mounts}
    assert policies == {
        tenancy.vault_policy_name(t): tenancy.tenant_policy_hcl(t, engines) for t in tenants
    }


def test_database_roles_read_write_and_read_only_per_tenant(dev: Built, local: Built) -> None:
    roles = {
        r.inputs["name"] for r in dev.of_type("vault:database/secretBackendRole:SecretBackendRole")
    }
    assert roles == {
        "default", "default.readonly", "default.payments",
        "team-a", "team-a.readonly", "team-b", "team-b.readonly",
    }  # fmt: skip
    connection = dev.one("vault:database/secretBackendConnection:SecretBackendConnection").inputs
    assert sorted(connection["allowedRoles"]) == sorted(roles)
    assert connection["postgresql"]["connectionUrl"].startswith(
        "postgresql://{{username}}:{{password}}@pg."
    )
    assert connection["postgresql"]["connectionUrl"].endswith("sslmode=require")
    assert not local.of_type("vault:database/secretBackendRole:SecretBackendRole")


def test_prometheus_and_grafana_select_the_operator_labels(stack: Built) -> None:
    [release] = [
        r
        for r in stack.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["chart"] == "kube-prometheus-stack"
    ]
    spec = release.inputs["values"]["prometheus"]["prometheusSpec"]
    labels = dict(tenancy.MONITORING_LABELS)
    for selector in ("serviceMonitorSelector", "podMonitorSelector", "ruleSelector"):
        assert spec[selector] == {"matchLabels": labels}
        assert spec[selector.replace("Selector", "NamespaceSelector")] == {}
    sidecar = release.inputs["values"]["grafana"]["sidecar"]["dashboards"]
    assert {sidecar["label"]: sidecar["labelValue"]} == dict(tenancy.DASHBOARD_LABELS)


def test_logging_ships_json_logs_to_opensearch(dev: Built, local: Built) -> None:
    [fluent] = [
        r for r in dev.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "fluent-bit"
    ]
    config = fluent.inputs["values"]["config"]
    assert "Merge_Log On" in config["filters"]
    assert "Host vpc-logs.example.internal" in config["outputs"] and "tls On" in config["outputs"]
    assert dev.outputs["opensearchDashboardsUrl"].startswith("http")
    assert local.outputs["opensearchDashboardsUrl"] is None


def test_traefik_serves_the_operator_ingress_class(stack: Built) -> None:
    [release] = [
        r for r in stack.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "traefik"
    ]
    assert release.inputs["values"]["ingressClass"]["name"] == tenancy.INGRESS_CLASS
    assert stack.outputs["ingressClass"] == tenancy.INGRESS_CLASS


def test_stack_outputs(stack: Built) -> None:
    outputs: dict[str, Any] = stack.outputs
    assert "kubeconfig" in stack.secret_outputs
    assert outputs["vaultAddress"] == "http://vault.vault.svc:8200"
    assert outputs["vaultAuthMount"] == tenancy.AUTH_MOUNT
    assert outputs["grafanaUrl"].startswith(("http://", "https://"))
    if stack.stack == "local":
        assert outputs["kubeconfig"] == SECRETS["mirage:kubeconfig"]
    else:
        assert "aws" in outputs["kubeconfig"] and "get-token" in outputs["kubeconfig"]
        assert set(outputs["dataStoreEndpoints"]) == set(STORE_TYPES)
    if stack.stack == "prod":
        assert outputs["grafanaUrl"] == "https://grafana.mirage.example.com"


BASE = {"tags": {"owner": "me", "cost-center": "x"}, "publicAccessCidrs": ["203.0.113.0/24"]}
PROXY = {"issuerUrl": "https://id.example.com", "clientId": "edge", "host": "auth.example.com"}


@pytest.mark.parametrize(
    ("raw", "secrets", "message"),
    [
        ({"environment": "staging"}, {}, "mirage:environment: must be one of dev, prod"),
        ({"tags": {"owner": "me"}}, {}, "mirage:tags: missing required tag(s) cost-center"),
        ({"cluster": "existing"}, {}, "mirage:kubeconfig: required"),
        ({"environment": "prod", "publicEndpoint": True}, {}, "mirage:publicEndpoint"),
        ({"publicAccessCidrs": ["0.0.0.0/0"]}, {}, "not a narrow CIDR"),
        ({"publicAccessCidrs": []}, {}, "mirage:publicAccessCidrs: required"),
        ({"dataStores": {"cassandra": True}}, {}, "unknown store(s) cassandra"),
        ({"dataStores": {"redis": "maybe"}}, {}, "mirage:redis: must be true or false"),
        ({"environment": "prod", "vaultMode": "dev", "publicEndpoint": False}, {}, "not in prod"),
        ({"vaultMode": "existing"}, {}, "mirage:vaultAddress: required"),
        ({"cluster": "existing", "vaultMode": "helm"}, {"kubeconfig": "k"}, "needs cluster: eks"),
        (
            {"environment": "prod", "availabilityZones": 1, "publicEndpoint": False},
            {},
            "at least 2",
        ),
        ({"availabilityZones": "two"}, {}, "mirage:availabilityZones: must be a whole number"),
        ({"vpcCidr": "10.0.0.0/8"}, {}, "mirage:vpcCidr: must be a /16"),
        ({"tenants": ["Team_A"]}, {}, "mirage:tenants[0].name: must be a namespace name"),
        ({"tenants": ["a", "a"]}, {}, "mirage:tenants[1].name: duplicate tenant"),
        ({"tenants": [{"name": "a", "databaseRoles": ["readonly"]}]}, {}, "databaseRoles"),
        (
            {"nodeGroups": [{"name": "x", "minSize": 3, "desiredSize": 1}]},
            {},
            "minSize <= desiredSize",
        ),
        ({"chartVersions": {"nginx": "1"}}, {}, "mirage:chartVersions: unknown chart"),
        ({"mesh": {"enabled": False, "joinByDefault": True}}, {}, "mesh.joinByDefault: needs"),
        ({"mesh": {"trustDomain": "Mirage_TD"}}, {}, "mirage:mesh.trustDomain: must be a DNS"),
        ({"mesh": {"enable": True}}, {}, "mirage:mesh: an object of"),
        ({"oauth2Proxy": {**PROXY, "issuerUrl": "http://id.example"}}, {}, "issuerUrl: must be"),
        ({"oauth2Proxy": {**PROXY, "clientId": ""}}, {}, "oauth2Proxy.clientId: required"),
        ({"oauth2Proxy": {**PROXY, "host": "auth"}}, {}, "oauth2Proxy.host: must be a host"),
        (
            {"oauth2Proxy": {**PROXY, "cookieDomain": ".other.example"}},
            {},
            "cookieDomain: must contain oauth2Proxy.host",
        ),
        ({"oauth2Proxy": PROXY}, {"oauth2ProxyClientSecret": ""}, "set this secret or"),
        (
            {
                "oauth2Proxy": {
                    **PROXY,
                    "clientSecretVault": {"mount": "kv", "path": "p", "key": "k"},
                }
            },
            {},
            "(one of them)",
        ),
        (
            {"oauth2Proxy": {**PROXY, "clientSecretVault": {"mount": "kv", "path": "p"}}},
            {"oauth2ProxyClientSecret": ""},
            "clientSecretVault: an object of mount, path, key",
        ),
    ],
)
def test_bad_settings_name_the_key(
    raw: dict[str, Any], secrets: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        parse(
            {**BASE, **raw}, secrets={"vaultToken": "t", "oauth2ProxyClientSecret": "c", **secrets}
        )
    assert message in str(caught.value)


def test_secrets_never_reach_settings_repr() -> None:
    settings = parse(
        {**BASE, "cluster": "existing", "oauth2Proxy": PROXY},
        secrets={"vaultToken": "s3cr3t", "kubeconfig": "k0nf", "oauth2ProxyClientSecret": "c1i"},
    )
    assert not {"s3cr3t", "k0nf", "c1i"} & set(re.findall(r"\w+", repr(settings)))


def test_mesh_on_by_default_on_eks_only_and_proxy_defaults() -> None:
    assert parse(BASE, secrets={"vaultToken": "t"}).mesh.enabled is True
    local = parse({**BASE, "cluster": "existing"}, secrets={"kubeconfig": "k"})
    assert local.mesh.enabled is False and local.oauth2_proxy is None
    proxy = parse(
        {**BASE, "oauth2Proxy": PROXY}, secrets={"vaultToken": "t", "oauth2ProxyClientSecret": "c"}
    ).oauth2_proxy
    assert proxy is not None
    assert (proxy.cookie_domain, proxy.email_domains) == (".example.com", ("*",))


def test_pulumi_yaml_documents_exactly_the_keys_the_program_reads() -> None:
    from stacks.settings import OBJECT_KEYS, SECRET_KEYS, STRING_KEYS
    from tests.stacks.harness import ROOT

    text = (ROOT / "Pulumi.yaml").read_text()
    documented = set(re.findall(r"^#   (\w+) ", text, flags=re.M))
    assert documented == {*STRING_KEYS, *OBJECT_KEYS, *SECRET_KEYS}
    project = yaml.safe_load(text)
    assert project["runtime"]["name"] == "python" and project["main"] == "stacks/"
    assert (ROOT / project["main"] / "__main__.py").exists()


@pytest.mark.parametrize("name", ["dev", "prod", "local"])
def test_stack_files_use_only_known_keys(name: str) -> None:
    from stacks.settings import OBJECT_KEYS, SECRET_KEYS, STRING_KEYS

    keys = {k.split(":", 1)[1] for k in stack_config(name) if k.startswith("mirage:")}
    assert keys <= {*STRING_KEYS, *OBJECT_KEYS, *SECRET_KEYS}
    assert {k.split(":", 1)[0] for k in stack_config(name)} <= {"mirage", "aws"}


def _store_resources(store: str, prod: bool) -> Counter[str]:
    # Each store: its security group and generated password, and its own resources.
    own = {
        "postgres": ["rds/instance:Instance", "rds/parameterGroup:ParameterGroup",
                     "rds/subnetGroup:SubnetGroup"],
        "mongodb": ["docdb/cluster:Cluster", "docdb/clusterParameterGroup:ClusterParameterGroup",
                    "docdb/subnetGroup:SubnetGroup"]
        + ["docdb/clusterInstance:ClusterInstance"] * (3 if prod else 1),
        "redis": ["elasticache/replicationGroup:ReplicationGroup",
                  "elasticache/subnetGroup:SubnetGroup"],
        "rabbitmq": ["mq/broker:Broker"],
        "opensearch": ["opensearch/domain:Domain"],
    }[store]  # fmt: skip
    return Counter(
        [*(f"aws:{t}" for t in own), "aws:ec2/securityGroup:SecurityGroup",
         "random:index/randomPassword:RandomPassword"]
    )  # fmt: skip


def expected_inventory(s: Settings) -> dict[str, Counter[str]]:
    """What each component must register for ``s``, by type and count: no more, no less."""
    cloud, zones, tenants = s.cloud, s.availability_zones, len(s.tenants)
    nats = zones if s.prod else 1
    k8s = "kubernetes:core/v1:"
    inventory: dict[str, Counter[str]] = {
        "mirage:cluster:Cluster": Counter({"pulumi:providers:kubernetes": 1}),
        "mirage:ingress:Ingress": Counter(
            {k8s + "Namespace": 1, "kubernetes:helm.sh/v3:Release": 1}
        ),
        "mirage:operator:MirageOperator": Counter(
            {k8s + "Namespace": 1, "kubernetes:helm.sh/v3:Release": 1}
        ),
        "mirage:tenants:Tenants": Counter(
            {
                k8s + kind: tenants
                for kind in ("Namespace", "ServiceAccount", "ResourceQuota", "LimitRange")
            }
            | {"kubernetes:networking.k8s.io/v1:NetworkPolicy": tenants}
        ),
    }
    logging = cloud and "opensearch" in s.stores  # Fluent Bit and OpenSearch Dashboards
    inventory["mirage:observability:Observability"] = Counter(
        {
            k8s + "Namespace": 1 + logging,
            k8s + "Secret": 1 + logging,  # Grafana's admin, Fluent Bit's OpenSearch login
            "kubernetes:helm.sh/v3:Release": 1 + 2 * logging,
            "random:index/randomPassword:RandomPassword": 1,
        }
    )
    if s.mesh.enabled:
        inventory["mirage:mesh:Mesh"] = Counter(
            {k8s + "Namespace": 1, "kubernetes:helm.sh/v3:Release": 3}  # base, cni, istiod
        )
    if s.oauth2_proxy is not None:
        inventory["mirage:oauth2proxy:OAuth2Proxy"] = Counter(
            {
                k8s + "Namespace": 1,
                k8s + "Secret": 1,
                "kubernetes:helm.sh/v3:Release": 1,
                "random:index/randomPassword:RandomPassword": 1,  # the cookie secret
            }
        )
    database = cloud and "postgres" in s.stores
    vault = Counter(
        {
            "pulumi:providers:vault": 1,
            "vault:index/mount:Mount": 2 + database,
            "vault:index/authBackend:AuthBackend": 1,
            "vault:kubernetes/authBackendConfig:AuthBackendConfig": 1,
            "vault:index/policy:Policy": tenants,
            "vault:kubernetes/authBackendRole:AuthBackendRole": tenants,
        }
    )
    if database:
        vault["vault:database/secretBackendConnection:SecretBackendConnection"] = 1
        vault["vault:database/secretBackendRole:SecretBackendRole"] = sum(
            2 + len(t.database_roles) for t in s.tenants
        )
    if s.vault_mode in {"helm", "dev"}:
        vault.update({k8s + "Namespace": 1, "kubernetes:helm.sh/v3:Release": 1})
    if s.vault_mode == "helm":  # KMS auto-unseal through IRSA
        vault.update(
            {"aws:kms/key:Key": 1, "aws:iam/role:Role": 1, "aws:iam/rolePolicy:RolePolicy": 1}
        )
    if s.vault_mode == "dev" and s.vault_token is None:
        vault["random:index/randomPassword:RandomPassword"] = 1
    inventory["mirage:vault:Vault"] = vault
    if not cloud:
        return inventory
    groups = len(s.node_groups)
    inventory["mirage:network:Network"] = Counter(
        {
            "aws:ec2/vpc:Vpc": 1,
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": 1,
            "aws:ec2/subnet:Subnet": 2 * zones,
            "aws:ec2/routeTableAssociation:RouteTableAssociation": 2 * zones,
            "aws:ec2/internetGateway:InternetGateway": 1,
            "aws:ec2/natGateway:NatGateway": nats,
            "aws:ec2/eip:Eip": nats,
            "aws:ec2/routeTable:RouteTable": 1 + zones,  # public, and private per zone
            "aws:ec2/flowLog:FlowLog": 1,
            "aws:cloudwatch/logGroup:LogGroup": 1,
            "aws:iam/role:Role": 1,
            "aws:iam/rolePolicy:RolePolicy": 1,
            "aws:kms/key:Key": 1,
        }
    )
    inventory["mirage:cluster:Cluster"] += Counter(
        {
            "aws:eks/cluster:Cluster": 1,
            "aws:eks/nodeGroup:NodeGroup": groups,
            "aws:ec2/launchTemplate:LaunchTemplate": groups,
            "aws:eks/addon:Addon": 4,
            "aws:iam/openIdConnectProvider:OpenIdConnectProvider": 1,
            "aws:iam/role:Role": 3,  # cluster, nodes, EBS CSI (IRSA)
            "aws:iam/rolePolicy:RolePolicy": 1,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 5,
            "aws:kms/key:Key": 2,  # Secrets envelope encryption, EBS volumes
            "aws:kms/alias:Alias": 1,
            "aws:cloudwatch/logGroup:LogGroup": 1,
            "kubernetes:storage.k8s.io/v1:StorageClass": 1,
            "kubernetes:storage.k8s.io/v1:StorageClassPatch": 1,
        }
    )
    data: Counter[str] = Counter({"aws:kms/key:Key": 1} if s.stores else {})
    for store in s.stores:
        data += _store_resources(store, s.prod)
    if data:
        inventory["mirage:data:DataStores"] = data
    return inventory


def inventory(built: Built) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for resource in built:
        if not resource.type.startswith("mirage:"):
            assert resource.component is not None, resource
            found.setdefault(resource.component, Counter())[resource.type] += 1
    return found


def settings_of(values: dict[str, Any]) -> Settings:
    raw = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("mirage:")}
    secrets = {k.split(":", 1)[1]: v for k, v in SECRETS.items()}
    return parse(raw, secrets=secrets)


@pytest.mark.parametrize("name", ["dev", "prod", "local"])
def test_each_component_registers_exactly_what_the_config_asks_for(name: str) -> None:
    from tests.stacks.conftest import built

    assert inventory(built(name)) == expected_inventory(settings_of(stack_config(name)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"mirage:dataStores": {"postgres": False, "opensearch": False}},
        {"mirage:dataStores": dict.fromkeys(STORE_TYPES, False)},
        {"mirage:tenants": ["solo"], "mirage:availabilityZones": 2},
        {"mirage:mesh": {"enabled": False}, "mirage:oauth2Proxy": None},
    ],
    ids=["no-postgres-no-opensearch", "no-stores", "one-tenant-two-zones", "no-mesh-no-proxy"],
)
def test_switched_config_changes_exactly_what_it_names(overrides: dict[str, Any]) -> None:
    values = {**stack_config("dev"), **overrides}
    values = {k: v for k, v in values.items() if v is not None}
    built = build("dev", overrides=overrides, secrets=SECRETS)
    assert inventory(built) == expected_inventory(settings_of(values))


def _release(built: Built, chart: str) -> Registered:
    [release] = [
        r for r in built.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == chart
    ]
    return release


def operator_platform(built: Built) -> dict[str, Any]:
    """The ``platform`` values the operator release gets."""
    [release] = [
        r
        for r in built.of_type("kubernetes:helm.sh/v3:Release")
        if r.component == "mirage:operator:MirageOperator"
    ]
    return dict(release.inputs["values"]["platform"])


def test_oauth2_proxy_secrets_are_secrets_and_stay_out_of_helm_values(dev: Built) -> None:
    [credentials] = [
        r
        for r in dev.of_type("kubernetes:core/v1:Secret")
        if r.component == "mirage:oauth2proxy:OAuth2Proxy"
    ]
    data = credentials.inputs["stringData"]
    for field in ("stringData.client-secret", "stringData.cookie-secret"):
        # The field is secret, or the object holding it is (secrecy wraps the nearest Output).
        assert any(field == s or field.startswith(f"{s}.") for s in credentials.secrets), field
    assert data["client-secret"] == SECRETS["mirage:oauth2ProxyClientSecret"]
    assert data["cookie-secret"] == "x" * 32  # the mocked RandomPassword: an AES-256 key's size
    assert data["client-id"] == stack_config("dev")["mirage:oauth2Proxy"]["clientId"]
    release = _release(dev, "oauth2-proxy")
    assert (
        release.inputs["values"]["config"]["existingSecret"]
        == credentials.inputs["metadata"]["name"]
    )
    assert release.inputs["namespace"] == credentials.inputs["metadata"]["namespace"]
    # Helm keeps values in plain text in its release record: no secret value may be in them.
    text = json.dumps(release.inputs["values"])
    assert data["client-secret"] not in text and data["cookie-secret"] not in text
    assert not release.secrets


def test_local_stack_turns_the_mesh_on_by_config() -> None:
    mesh = {"enabled": True, "trustDomain": "td.local", "joinByDefault": True}
    built = build("local", overrides={"mirage:mesh": mesh}, secrets=SECRETS)
    assert inventory(built) == expected_inventory(
        settings_of({**stack_config("local"), "mirage:mesh": mesh})
    )
    assert _release(built, "istiod").inputs["values"]["meshConfig"]["trustDomain"] == "td.local"
    assert built.outputs["meshTrustDomain"] == "td.local"
    platform = operator_platform(built)
    assert (platform["meshTrustDomain"], platform["meshDefault"]) == ("td.local", True)
    traefik = _release(built, "traefik").inputs["values"]
    assert traefik["providers"]["kubernetesIngress"]["nativeLBByDefault"] is True
    assert traefik["deployment"]["podAnnotations"] == {
        "traffic.sidecar.istio.io/includeInboundPorts": ""
    }


def test_operator_gets_the_mesh_and_proxy_of_the_stack(prod: Built, local: Built) -> None:
    platform = operator_platform(prod)
    assert platform["meshDefault"] is False  # services join only when asked
    assert platform["meshTrustDomain"] == prod.outputs["meshTrustDomain"] == "mirage.example.com"
    assert platform["oauth2ProxyUrl"] == prod.outputs["oauth2ProxyUrl"]
    assert platform["oauth2ProxyService"] == "oauth2-proxy/oauth2-proxy:80"
    # Without a proxy the chart's default address stays (the operator needs one to start).
    assert not {"oauth2ProxyUrl", "oauth2ProxyService"} & set(operator_platform(local))
    assert local.outputs["signInUrl"] is None
    assert prod.outputs["signInUrl"] == "https://auth.mirage.example.com/oauth2/start"


def test_oauth2_proxy_client_secret_from_vault() -> None:
    proxy = {
        **stack_config("dev")["mirage:oauth2Proxy"],
        "clientSecretVault": {"mount": "platform", "path": "oauth2-proxy", "key": "client-secret"},
    }
    secrets = {k: v for k, v in SECRETS.items() if k != "mirage:oauth2ProxyClientSecret"}
    built = build("dev", overrides={"mirage:oauth2Proxy": proxy}, secrets=secrets)
    [credentials] = [
        r
        for r in built.of_type("kubernetes:core/v1:Secret")
        if r.component == "mirage:oauth2proxy:OAuth2Proxy"
    ]
    assert credentials.inputs["stringData"]["client-secret"] == "idp-client-secret-from-vault"
    assert "stringData" in credentials.secrets
