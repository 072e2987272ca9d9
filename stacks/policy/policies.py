"""The Mirage policy pack's rules, as plain validate functions over a resource's properties
(engine names, camelCase: what ``pulumi preview --policy-pack stacks/policy`` hands over).

- ``no-public-data-store``: RDS, Amazon MQ not publicly accessible; OpenSearch inside a VPC;
  no security group opens a data-store port to the internet.
- ``no-unencrypted-storage``: every store encrypted at rest (and in transit where the service
  allows a choice), EKS Secrets envelope-encrypted, node volumes and log groups encrypted,
  KMS keys rotated.
- ``prod-protection``: in prod (tag ``mirage:environment=prod``) Multi-AZ and deletion
  protection of every store that has them, and a private EKS endpoint.
- ``required-tags``: every taggable AWS resource carries :data:`REQUIRED_TAGS`.
- ``vault-policy-least-privilege``: no Vault policy grants a bare ``*``/``+`` path or ``sudo``.
- ``vault-tenant-role-bound``: no kubernetes auth role is bound to ``*`` namespaces or
  ServiceAccounts (or to none), and each requires an audience.
- ``oauth2-proxy-secrets-by-reference``: an OAuth2 Proxy release takes its client and cookie
  secrets from an existing Secret, never from Helm values (stored in plain text by Helm).
- ``istio-cni-for-restricted-pods``: istiod injects sidecars through the CNI plugin, so that
  meshed pods pass the restricted Pod Security profile (no ``NET_ADMIN`` init container).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

Report = Callable[[str], None]
"""Reports one violation (its message)."""

Validate = Callable[[str, Mapping[str, Any], Report], None]
"""``validate(resource_type, props, report)``."""

REQUIRED_TAGS = ("owner", "cost-center", "mirage:stack", "mirage:environment", "managed-by")
DATA_PORTS = frozenset({5432, 27017, 6379, 5671, 443, 9200})
OPEN = frozenset({"0.0.0.0/0", "::/0"})

RDS = "aws:rds/instance:Instance"
DOCDB = "aws:docdb/cluster:Cluster"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
MQ = "aws:mq/broker:Broker"
OPENSEARCH = "aws:opensearch/domain:Domain"
EKS = "aws:eks/cluster:Cluster"


def _prod(props: Mapping[str, Any]) -> bool:
    return (props.get("tags") or {}).get("mirage:environment") == "prod"


def no_public_data_store(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """Data stores are reachable from inside the VPC only."""
    if kind in {RDS, MQ} and props.get("publiclyAccessible") is not False:
        report(f"{kind}: publiclyAccessible must be false")
    if kind == OPENSEARCH and not (props.get("vpcOptions") or {}).get("subnetIds"):
        report(f"{kind}: the domain must live in the VPC (vpcOptions.subnetIds)")
    if kind == "aws:ec2/securityGroup:SecurityGroup":
        for rule in props.get("ingress") or ():
            ports = range(int(rule.get("fromPort", 0)), int(rule.get("toPort", 65535)) + 1)
            world = OPEN & {*(rule.get("cidrBlocks") or ()), *(rule.get("ipv6CidrBlocks") or ())}
            if world and any(p in DATA_PORTS for p in ports):
                report(f"{kind}: a data-store port is open to {', '.join(sorted(world))}")


def no_unencrypted_storage(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """Everything stored is encrypted, and stores encrypt traffic where that is a choice."""
    checks: dict[str, list[tuple[str, Callable[[Mapping[str, Any]], bool]]]] = {
        RDS: [("storageEncrypted", lambda p: p.get("storageEncrypted") is True)],
        DOCDB: [("storageEncrypted", lambda p: p.get("storageEncrypted") is True)],
        REDIS: [
            ("atRestEncryptionEnabled", lambda p: p.get("atRestEncryptionEnabled") is True),
            ("transitEncryptionEnabled", lambda p: p.get("transitEncryptionEnabled") is True),
            ("authToken", lambda p: bool(p.get("authToken"))),
        ],
        OPENSEARCH: [
            (
                "encryptAtRest.enabled",
                lambda p: (p.get("encryptAtRest") or {}).get("enabled") is True,
            ),
            (
                "nodeToNodeEncryption.enabled",
                lambda p: (p.get("nodeToNodeEncryption") or {}).get("enabled") is True,
            ),
            (
                "domainEndpointOptions.enforceHttps",
                lambda p: (p.get("domainEndpointOptions") or {}).get("enforceHttps") is True,
            ),
        ],
        EKS: [
            (
                "encryptionConfig (secrets)",
                lambda p: "secrets" in ((p.get("encryptionConfig") or {}).get("resources") or ()),
            )
        ],
        "aws:cloudwatch/logGroup:LogGroup": [("kmsKeyId", lambda p: bool(p.get("kmsKeyId")))],
        "aws:kms/key:Key": [("enableKeyRotation", lambda p: p.get("enableKeyRotation") is True)],
        "aws:ebs/volume:Volume": [("encrypted", lambda p: p.get("encrypted") is True)],
    }
    for field, ok in checks.get(kind, ()):
        if not ok(props):
            report(f"{kind}: {field} must be set (encryption)")
    if kind == "kubernetes:storage.k8s.io/v1:StorageClass":
        ebs = props.get("provisioner") in {"ebs.csi.aws.com", "kubernetes.io/aws-ebs"}
        encrypted = str((props.get("parameters") or {}).get("encrypted")).lower() == "true"
        if ebs and not encrypted:
            report(f"{kind}: EBS volumes of this class must be encrypted (parameters.encrypted)")
    if kind == "aws:ec2/launchTemplate:LaunchTemplate":
        for device in props.get("blockDeviceMappings") or ():
            if str((device.get("ebs") or {}).get("encrypted")).lower() != "true":
                report(f"{kind}: block device {device.get('deviceName')} must be encrypted")


def prod_protection(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """In prod: Multi-AZ and deletion protection of every store; a private EKS endpoint."""
    if not _prod(props):
        return
    wanted: dict[str, list[tuple[str, bool]]] = {
        RDS: [
            ("multiAz", props.get("multiAz") is True),
            ("deletionProtection", props.get("deletionProtection") is True),
        ],
        DOCDB: [("deletionProtection", props.get("deletionProtection") is True)],
        REDIS: [
            ("multiAzEnabled", props.get("multiAzEnabled") is True),
            ("automaticFailoverEnabled", props.get("automaticFailoverEnabled") is True),
        ],
        MQ: [("deploymentMode", props.get("deploymentMode") == "CLUSTER_MULTI_AZ")],
        OPENSEARCH: [
            (
                "clusterConfig.zoneAwarenessEnabled",
                (props.get("clusterConfig") or {}).get("zoneAwarenessEnabled") is True,
            )
        ],
        EKS: [
            (
                "vpcConfig.endpointPublicAccess=false",
                (props.get("vpcConfig") or {}).get("endpointPublicAccess") is False,
            )
        ],
    }
    for field, ok in wanted.get(kind, ()):
        if not ok:
            report(f"{kind}: {field} is required in prod")


@functools.cache
def taggable(kind: str) -> bool:
    """Whether the ``pulumi_aws`` resource of type ``kind`` takes ``tags``."""
    match = re.fullmatch(r"aws:([A-Za-z0-9]+)/[A-Za-z0-9]+:([A-Za-z0-9]+)", kind)
    if match is None:
        return False
    module, name = match.groups()
    try:
        package = importlib.import_module(
            "pulumi_aws" if module == "index" else f"pulumi_aws.{module}"
        )
    except ImportError:
        return False
    cls = getattr(package, name, None)
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def required_tags(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """Every taggable AWS resource has the required tags, none of them empty."""
    if not taggable(kind):
        return
    tags = props.get("tags") or {}
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        report(f"{kind}: missing tag(s) {', '.join(missing)}")


_BLOCK = re.compile(r'path\s+"([^"]*)"\s*\{([^}]*)\}', re.S)
_CAPS = re.compile(r"capabilities\s*=\s*\[([^\]]*)\]", re.S)


def parse_policy(hcl: str) -> dict[str, list[str]] | None:
    """Path to capabilities of a Vault policy in HCL; ``None`` when it holds anything this
    simple reader does not understand (which the policy then refuses)."""
    rules: dict[str, list[str]] = {}
    rest = _BLOCK.sub("", hcl)
    if re.sub(r"#[^\n]*", "", rest).strip():
        return None
    for path, body in _BLOCK.findall(hcl):
        caps = _CAPS.search(body)
        if caps is None:
            return None
        rules[path] = re.findall(r'"([^"]+)"', caps.group(1))
    return rules


def vault_policy_least_privilege(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """No Vault policy grants every path (``*``, ``+`` or ``+/*``) or ``sudo``."""
    if kind != "vault:index/policy:Policy":
        return
    rules = parse_policy(str(props.get("policy", "")))
    if rules is None:
        report(f"{kind}: policy is not plain `path` blocks; cannot be checked")
        return
    for path, caps in rules.items():
        if re.fullmatch(r"[*+/]*", path):
            report(f"{kind}: path {path!r} grants every path")
        if "sudo" in caps:
            report(f"{kind}: path {path!r} grants sudo")


def vault_tenant_role_bound(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """Kubernetes auth roles name their ServiceAccounts and namespaces, never ``*``, and
    require an audience."""
    if kind != "vault:kubernetes/authBackendRole:AuthBackendRole":
        return
    for field in ("boundServiceAccountNames", "boundServiceAccountNamespaces"):
        values = list(props.get(field) or ())
        if not values or any("*" in v for v in values):
            report(f"{kind}: {field} must list names, never '*' or nothing")
    if props.get("boundServiceAccountNamespaceSelector"):
        report(f"{kind}: boundServiceAccountNamespaceSelector widens the role beyond its namespace")
    if not props.get("audience"):
        report(f"{kind}: audience must be set")


HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _chart(kind: str, props: Mapping[str, Any]) -> str | None:
    # The chart's name, whether given bare (with a repository) or as a path or URL.
    if kind != HELM_RELEASE:
        return None
    return str(props.get("chart", "")).rstrip("/").rsplit("/", 1)[-1] or None


def oauth2_proxy_secrets_by_reference(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """OAuth2 Proxy's secrets come from ``config.existingSecret``, never from values."""
    if _chart(kind, props) != "oauth2-proxy":
        return
    config = (props.get("values") or {}).get("config") or {}
    for field in ("clientSecret", "cookieSecret"):
        if config.get(field):
            report(f"{kind}: config.{field} in Helm values is stored in plain text by Helm")
    if not config.get("existingSecret"):
        report(f"{kind}: config.existingSecret must name the Secret holding the credentials")


def istio_cni_for_restricted_pods(kind: str, props: Mapping[str, Any], report: Report) -> None:
    """istiod's sidecar injector relies on the CNI plugin, not on a NET_ADMIN init container."""
    if _chart(kind, props) != "istiod":
        return
    pilot = (props.get("values") or {}).get("pilot") or {}
    if (pilot.get("cni") or {}).get("enabled") is not True:
        report(f"{kind}: pilot.cni.enabled must be true (restricted pods cannot run istio-init)")


POLICIES: Mapping[str, tuple[str, Validate]] = {
    "no-public-data-store": ("Data stores are private to the VPC.", no_public_data_store),
    "no-unencrypted-storage": ("Everything stored is encrypted.", no_unencrypted_storage),
    "prod-protection": (
        "Multi-AZ, deletion protection and a private API endpoint in prod.",
        prod_protection,
    ),
    "required-tags": ("Every taggable AWS resource carries the required tags.", required_tags),
    "vault-policy-least-privilege": (
        "No Vault policy grants a bare wildcard path or sudo.",
        vault_policy_least_privilege,
    ),
    "vault-tenant-role-bound": (
        "Tenant roles are bound to named ServiceAccounts and namespaces.",
        vault_tenant_role_bound,
    ),
    "oauth2-proxy-secrets-by-reference": (
        "OAuth2 Proxy's secrets reach it through a Secret, never Helm values.",
        oauth2_proxy_secrets_by_reference,
    ),
    "istio-cni-for-restricted-pods": (
        "Sidecars are set up by the Istio CNI plugin (restricted Pod Security).",
        istio_cni_for_restricted_pods,
    ),
}
"""Policy name to (description, validate)."""
