"""Cluster: EKS (managed node groups, IRSA, KMS envelope encryption of Secrets) or an existing
cluster from a kubeconfig; either way a ``pulumi_kubernetes`` provider for the layers above.

Built from ``pulumi_aws`` resources rather than the ``pulumi_eks`` component (ADR 0101)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from stacks.components.common import allow, child, kms_key, named, policy_document, service_role
from stacks.settings import NodeGroup

CLUSTER_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ENCRYPTED_STORAGE_CLASS = "gp3-encrypted"
"""The cluster's default StorageClass on EKS: gp3 volumes encrypted with the cluster's key."""
ADDONS = ("vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver")


def kubeconfig(*, name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig for an EKS cluster that gets tokens from ``aws eks get-token`` (the
    caller's AWS credentials): nothing long-lived is stored in it."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                name,
                                "--region",
                                region,
                            ],
                        }
                    },
                }
            ],
        },
        sort_keys=False,
    )


def irsa_assume_policy(*, provider_arn: str, issuer: str, subjects: Sequence[str]) -> str:
    """Trust policy letting ServiceAccounts (``namespace:name``) assume a role through the
    cluster's OIDC provider (IRSA), with the STS audience."""
    host = issuer.removeprefix("https://")
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{host}:aud": "sts.amazonaws.com",
                    f"{host}:sub": [f"system:serviceaccount:{s}" for s in subjects],
                }
            },
        }
    )


class Cluster(pulumi.ComponentResource):
    """An EKS cluster (``existing_kubeconfig`` unset) or an existing cluster.

    EKS: a KMS key (rotated) for envelope encryption of Secrets, control-plane logs, the API
    endpoint private (public only when ``public_access_cidrs`` are given), managed node groups
    in the private subnets with encrypted gp3 root volumes and IMDSv2, the OIDC provider for
    IRSA, and the core add-ons. Outputs: ``kubeconfig`` (secret), ``provider`` (a
    ``pulumi_kubernetes`` provider), and for EKS ``name``, ``security_group_id``,
    ``oidc_provider_arn``, ``oidc_issuer``."""

    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    _volume_key: aws.kms.Key | None = None
    _addon_resources: list[pulumi.Resource]
    name: pulumi.Output[str] | None = None
    security_group_id: pulumi.Output[str] | None = None
    oidc_provider_arn: pulumi.Output[str] | None = None
    oidc_issuer: pulumi.Output[str] | None = None

    def __init__(
        self,
        name: str,
        *,
        existing_kubeconfig: pulumi.Input[str] | None = None,
        version: str = "",
        subnet_ids: pulumi.Input[Sequence[str]] = (),
        public_access_cidrs: Sequence[str] = (),
        node_groups: Sequence[NodeGroup] = (),
        tags: Mapping[str, str] = {},
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mirage:cluster:Cluster", name, None, opts)
        self._addon_resources = []
        if existing_kubeconfig is not None:
            self.kubeconfig = pulumi.Output.secret(existing_kubeconfig)
        else:
            self.kubeconfig = self._eks(
                name, version, subnet_ids, public_access_cidrs, node_groups, tags
            )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            delete_unreachable=False,
            opts=child(self),
        )
        if self._volume_key is not None:
            self._storage_classes(name, self._volume_key)
        self.register_outputs({"kubeconfig": self.kubeconfig})

    def _storage_classes(self, name: str, key: aws.kms.Key) -> None:
        # EKS's default gp2 class makes unencrypted volumes: a KMS-encrypted gp3 class becomes
        # the default (Prometheus, Alertmanager and Vault claim volumes without a class).
        options = child(self, provider=self.provider, depends_on=self._addon_resources)
        default = "storageclass.kubernetes.io/is-default-class"
        k8s.storage.v1.StorageClass(
            f"{name}-gp3-encrypted",
            metadata={"name": ENCRYPTED_STORAGE_CLASS, "annotations": {default: "true"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": key.arn},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=options,
        )
        k8s.storage.v1.StorageClassPatch(
            f"{name}-gp2-not-default",
            metadata={"name": "gp2", "annotations": {default: "false"}},
            opts=options,
        )

    def _eks(
        self,
        name: str,
        version: str,
        subnet_ids: pulumi.Input[Sequence[str]],
        public_access_cidrs: Sequence[str],
        node_groups: Sequence[NodeGroup],
        tags: Mapping[str, str],
    ) -> pulumi.Output[str]:
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        key = kms_key(
            self, f"{name}-secrets", tags=tags,
            purpose=f"{name}: envelope encryption of Kubernetes Secrets and node volumes",
        )  # fmt: skip
        aws.kms.Alias(
            f"{name}-secrets",
            name=f"alias/{name}-{pulumi.get_stack()}-secrets",
            target_key_id=key.key_id,
            opts=child(self),
        )
        logs_key = kms_key(
            self, f"{name}-control-plane-logs", tags=tags, for_logs=True,
            purpose=f"{name}: EKS control-plane log encryption",
        )  # fmt: skip
        logs = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            # EKS writes to exactly this name; creating it first sets retention and encryption.
            name=f"/aws/eks/{name}-{pulumi.get_stack()}/cluster",
            retention_in_days=90,
            kms_key_id=logs_key.arn,
            tags=named(tags, f"{name}-control-plane"),
            opts=child(self),
        )
        role, attachments = service_role(
            self, f"{name}-cluster", service="eks.amazonaws.com",
            managed_policies=("AmazonEKSClusterPolicy",), tags=tags,
        )  # fmt: skip
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=f"{name}-{pulumi.get_stack()}",
            version=version,
            role_arn=role.arn,
            vpc_config={
                "subnet_ids": subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": bool(public_access_cidrs),
                "public_access_cidrs": list(public_access_cidrs) or None,
            },
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": key.arn}},
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            access_config={
                "authentication_mode": "API",
                "bootstrap_cluster_creator_admin_permissions": True,
            },
            tags=named(tags, f"{name}-eks"),
            opts=child(self, depends_on=[*attachments, logs]),
        )
        issuer = cluster.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"])
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=named(tags, f"{name}-oidc"),
            opts=child(self),
        )
        nodes = self._node_groups(name, cluster, subnet_ids, node_groups, key, tags)
        self._addons(name, cluster, oidc, issuer, nodes, key, tags)
        self._volume_key = key
        self.name = cluster.name
        self.security_group_id = cluster.vpc_config.apply(
            lambda c: (
                c["cluster_security_group_id"]
                if isinstance(c, dict)
                else c.cluster_security_group_id
            )
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = issuer
        return pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority, region.region
            ).apply(
                lambda a: kubeconfig(
                    name=a[0],
                    endpoint=a[1],
                    ca_data=a[2]["data"] if isinstance(a[2], dict) else a[2].data,
                    region=a[3],
                )
            )
        )

    def _node_groups(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        subnet_ids: pulumi.Input[Sequence[str]],
        groups: Sequence[NodeGroup],
        key: aws.kms.Key,
        tags: Mapping[str, str],
    ) -> list[aws.eks.NodeGroup]:
        role, attachments = service_role(
            self, f"{name}-nodes", service="ec2.amazonaws.com",
            managed_policies=(
                "AmazonEKSWorkerNodePolicy",
                "AmazonEKS_CNI_Policy",
                "AmazonEC2ContainerRegistryReadOnly",
            ),
            tags=tags,
        )  # fmt: skip
        made = []
        for group in groups:
            template = aws.ec2.LaunchTemplate(
                f"{name}-{group.name}",
                block_device_mappings=[
                    {
                        "device_name": "/dev/xvda",
                        "ebs": {
                            "volume_size": 50,
                            "volume_type": "gp3",
                            "encrypted": "true",
                            "kms_key_id": key.arn,
                            "delete_on_termination": "true",
                        },
                    }
                ],
                # IMDSv2 only, one hop: pods cannot borrow the node's role.
                metadata_options={
                    "http_endpoint": "enabled",
                    "http_tokens": "required",
                    "http_put_response_hop_limit": 1,
                },
                tag_specifications=[
                    {"resource_type": kind, "tags": named(tags, f"{name}-{group.name}")}
                    for kind in ("instance", "volume")
                ],
                tags=named(tags, f"{name}-{group.name}"),
                opts=child(self),
            )
            made.append(
                aws.eks.NodeGroup(
                    f"{name}-{group.name}",
                    cluster_name=cluster.name,
                    node_role_arn=role.arn,
                    subnet_ids=subnet_ids,
                    instance_types=list(group.instance_types),
                    scaling_config={
                        "min_size": group.min_size,
                        "desired_size": group.desired_size,
                        "max_size": group.max_size,
                    },
                    update_config={"max_unavailable": 1},
                    launch_template={
                        "id": template.id,
                        "version": template.latest_version.apply(str),
                    },
                    tags=named(tags, f"{name}-{group.name}"),
                    opts=child(
                        self,
                        depends_on=attachments,
                        ignore_changes=["scaling_config.desired_size"],
                    ),
                )
            )
        return made

    def _addons(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        oidc: aws.iam.OpenIdConnectProvider,
        issuer: pulumi.Output[str],
        nodes: Sequence[aws.eks.NodeGroup],
        key: aws.kms.Key,
        tags: Mapping[str, str],
    ) -> None:
        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=pulumi.Output.all(oidc.arn, issuer).apply(
                lambda a: irsa_assume_policy(
                    provider_arn=a[0], issuer=a[1], subjects=["kube-system:ebs-csi-controller-sa"]
                )
            ),
            tags=named(tags, f"{name}-ebs-csi"),
            opts=child(self),
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=ebs_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
            opts=child(self),
        )
        # The managed policy covers AWS-managed keys only; volumes use the cluster's own key.
        allow(
            self,
            f"{name}-ebs-csi-kms",
            role=ebs_role,
            actions=[
                "kms:CreateGrant",
                "kms:ListGrants",
                "kms:RevokeGrant",
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
            ],
            resources=[key.arn],
        )
        for addon in ADDONS:
            self._addon_resources.append(
                aws.eks.Addon(
                    f"{name}-{addon}",
                    cluster_name=cluster.name,
                    addon_name=addon,
                    resolve_conflicts_on_update="OVERWRITE",
                    service_account_role_arn=ebs_role.arn
                    if addon == "aws-ebs-csi-driver"
                    else None,
                    tags=named(tags, f"{name}-{addon}"),
                    opts=child(self, depends_on=list(nodes)),
                )
            )
