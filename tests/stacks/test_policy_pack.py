"""The policy pack: each policy passes a compliant resource and reports a violating one, called
through pulumi_policy's own validate signature; and the three stacks pass the whole pack."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, PolicyResourceOptions, ResourceValidationArgs

from mirage_operator import tenancy
from stacks.policy.pack import policies
from stacks.policy.policies import POLICIES, parse_policy
from tests.stacks.harness import Built

TAGS = {
    "owner": "me",
    "cost-center": "x",
    "mirage:stack": "dev",
    "mirage:environment": "dev",
    "managed-by": "pulumi",
}
PROD = {**TAGS, "mirage:environment": "prod"}


def run(policy: str, kind: str, props: dict[str, Any]) -> list[str]:
    """Violations ``policy`` reports for one resource, through the pack's own policy object."""
    [validate_policy] = [p for p in policies() if p.name == policy]
    assert validate_policy.enforcement_level == EnforcementLevel.MANDATORY
    opts = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        additional_secret_outputs=[],
        custom_timeouts=None,  # type: ignore[arg-type]
    )
    args = ResourceValidationArgs(kind, props, f"urn:pulumi:t::mirage::{kind}::x", "x", opts, None)
    found: list[str] = []
    assert validate_policy.validate is not None
    validate_policy.validate(args, lambda message, urn=None: found.append(message))  # type: ignore[operator]
    return found


HCL_OK = tenancy.tenant_policy_hcl("team-a")

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    # policy, type, compliant props, violating props, expected message part
    (
        "no-public-data-store",
        "aws:rds/instance:Instance",
        {"publiclyAccessible": False},
        {"publiclyAccessible": True},
        "publiclyAccessible",
    ),
    (
        "no-public-data-store",
        "aws:mq/broker:Broker",
        {"publiclyAccessible": False},
        {},
        "publiclyAccessible",
    ),
    (
        "no-public-data-store",
        "aws:opensearch/domain:Domain",
        {"vpcOptions": {"subnetIds": ["s"]}},
        {},
        "vpcOptions",
    ),
    (
        "no-public-data-store",
        "aws:ec2/securityGroup:SecurityGroup",
        {"ingress": [{"fromPort": 5432, "toPort": 5432, "securityGroups": ["sg"]}]},
        {"ingress": [{"fromPort": 0, "toPort": 65535, "cidrBlocks": ["0.0.0.0/0"]}]},
        "open to 0.0.0.0/0",
    ),
    (
        "no-unencrypted-storage",
        "aws:rds/instance:Instance",
        {"storageEncrypted": True},
        {"storageEncrypted": False},
        "storageEncrypted",
    ),
    (
        "no-unencrypted-storage",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True, "authToken": "t"},
        {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": False, "authToken": "t"},
        "transitEncryptionEnabled",
    ),
    (
        "no-unencrypted-storage",
        "aws:opensearch/domain:Domain",
        {
            "encryptAtRest": {"enabled": True},
            "nodeToNodeEncryption": {"enabled": True},
            "domainEndpointOptions": {"enforceHttps": True},
        },
        {"encryptAtRest": {"enabled": True}, "nodeToNodeEncryption": {"enabled": True}},
        "enforceHttps",
    ),
    (
        "no-unencrypted-storage",
        "aws:eks/cluster:Cluster",
        {"encryptionConfig": {"resources": ["secrets"]}},
        {},
        "encryptionConfig",
    ),
    (
        "no-unencrypted-storage",
        "aws:kms/key:Key",
        {"enableKeyRotation": True},
        {"enableKeyRotation": False},
        "enableKeyRotation",
    ),
    (
        "no-unencrypted-storage",
        "aws:ec2/launchTemplate:LaunchTemplate",
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]},
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {}}]},
        "/dev/xvda must be encrypted",
    ),
    (
        "no-unencrypted-storage",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        {"provisioner": "ebs.csi.aws.com", "parameters": {"encrypted": "true"}},
        {"provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3"}},
        "parameters.encrypted",
    ),
    (
        "prod-protection",
        "aws:rds/instance:Instance",
        {"tags": PROD, "multiAz": True, "deletionProtection": True},
        {"tags": PROD, "multiAz": True, "deletionProtection": False},
        "deletionProtection is required in prod",
    ),
    (
        "prod-protection",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        {"tags": PROD, "multiAzEnabled": True, "automaticFailoverEnabled": True},
        {"tags": PROD, "automaticFailoverEnabled": True},
        "multiAzEnabled",
    ),
    (
        "prod-protection",
        "aws:mq/broker:Broker",
        {"tags": PROD, "deploymentMode": "CLUSTER_MULTI_AZ"},
        {"tags": PROD, "deploymentMode": "SINGLE_INSTANCE"},
        "deploymentMode",
    ),
    (
        "prod-protection",
        "aws:eks/cluster:Cluster",
        {"tags": PROD, "vpcConfig": {"endpointPublicAccess": False}},
        {"tags": PROD, "vpcConfig": {"endpointPublicAccess": True}},
        "endpointPublicAccess",
    ),
    (
        "prod-protection",  # dev may run single-AZ: the same props pass without the prod tag
        "aws:docdb/cluster:Cluster",
        {"tags": TAGS, "deletionProtection": False},
        {"tags": PROD, "deletionProtection": False},
        "deletionProtection",
    ),
    (
        "required-tags",
        "aws:ec2/vpc:Vpc",
        {"tags": TAGS},
        {"tags": {k: v for k, v in TAGS.items() if k != "cost-center"}},
        "missing tag(s) cost-center",
    ),
    (
        "required-tags",
        "aws:s3/bucket:Bucket",
        {"tags": TAGS},
        {},
        "missing tag(s) owner",
    ),
    (
        "vault-policy-least-privilege",
        "vault:index/policy:Policy",
        {"policy": HCL_OK},
        {"policy": HCL_OK + 'path "*" {\n  capabilities = ["read"]\n}\n'},
        "grants every path",
    ),
    (
        "vault-policy-least-privilege",
        "vault:index/policy:Policy",
        {"policy": 'path "secret/data/a/*" { capabilities = ["read"] }'},
        {"policy": 'path "sys/leases/revoke-prefix/*" { capabilities = ["update", "sudo"] }'},
        "grants sudo",
    ),
    (
        "vault-policy-least-privilege",
        "vault:index/policy:Policy",
        {"policy": "# comment only\n"},
        {"policy": 'path "a" { capabilities = ["read"] }\npath "b" = {}'},
        "cannot be checked",
    ),
    (
        "vault-tenant-role-bound",
        "vault:kubernetes/authBackendRole:AuthBackendRole",
        {
            "boundServiceAccountNames": ["mirage-vault"],
            "boundServiceAccountNamespaces": ["team-a"],
            "audience": "vault",
        },
        {
            "boundServiceAccountNames": ["mirage-vault"],
            "boundServiceAccountNamespaces": ["*"],
            "audience": "vault",
        },
        "boundServiceAccountNamespaces must list names",
    ),
    (
        "vault-tenant-role-bound",
        "vault:kubernetes/authBackendRole:AuthBackendRole",
        {
            "boundServiceAccountNames": ["mirage-vault"],
            "boundServiceAccountNamespaces": ["team-a"],
            "audience": "vault",
        },
        {"boundServiceAccountNames": ["*"], "boundServiceAccountNamespaces": ["team-a"]},
        "boundServiceAccountNames must list names",
    ),
    (
        "oauth2-proxy-secrets-by-reference",
        "kubernetes:helm.sh/v3:Release",
        {"chart": "oauth2-proxy", "values": {"config": {"existingSecret": "creds"}}},
        {"chart": "oauth2-proxy", "values": {"config": {"clientSecret": "s3cr3t"}}},
        "config.clientSecret in Helm values",
    ),
    (
        "oauth2-proxy-secrets-by-reference",
        "kubernetes:helm.sh/v3:Release",
        {"chart": "./charts/other", "values": {"config": {"cookieSecret": "not ours"}}},
        {"chart": "./vendor/oauth2-proxy/", "values": {}},
        "config.existingSecret must name",
    ),
    (
        "istio-cni-for-restricted-pods",
        "kubernetes:helm.sh/v3:Release",
        {"chart": "istiod", "values": {"pilot": {"cni": {"enabled": True}}}},
        {"chart": "istiod", "values": {"pilot": {"autoscaleMin": 1}}},
        "pilot.cni.enabled must be true",
    ),
]


@pytest.mark.parametrize(
    ("policy", "kind", "good", "bad", "message"),
    CASES,
    ids=[f"{c[0]}:{c[1].split(':')[-1]}:{i}" for i, c in enumerate(CASES)],
)
def test_policy_passes_good_and_reports_bad(
    policy: str, kind: str, good: dict[str, Any], bad: dict[str, Any], message: str
) -> None:
    assert run(policy, kind, good) == []
    violations = run(policy, kind, bad)
    assert violations and any(message in v for v in violations), violations


def test_every_policy_has_cases() -> None:
    assert {c[0] for c in CASES} == set(POLICIES)


def test_the_stacks_pass_the_whole_pack(stack: Built) -> None:
    checked = 0
    for resource in stack:
        if not resource.custom:
            continue
        for name in POLICIES:
            assert run(name, resource.type, resource.inputs) == [], (resource.type, resource.name)
            checked += 1
    assert checked > 0


def test_policy_reader_reads_the_tenant_policy() -> None:
    assert parse_policy(HCL_OK) == {
        path: list(caps) for path, caps in tenancy.tenant_policy_rules("team-a").items()
    }
