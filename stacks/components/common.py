"""What every component shares: tags, child options, and the few building blocks several
layers use (KMS keys, IAM roles and policy documents, Helm releases)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

MANAGED_BY = {"managed-by": "pulumi", "app.kubernetes.io/part-of": "mirage"}
"""Tags and labels on everything the program creates, beside the stack's own tags."""


def stack_tags(tags: Mapping[str, str], *, environment: str) -> dict[str, str]:
    """The tags of every taggable cloud resource: the stack's ``mirage:tags`` plus the stack
    name, its environment and who manages it."""
    return {
        **tags,
        "mirage:stack": pulumi.get_stack(),
        "mirage:environment": environment,
        "managed-by": "pulumi",
    }


def named(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """``tags`` with the AWS console's ``Name``."""
    return {**tags, "Name": name}


def child(parent: pulumi.Resource, **kwargs: object) -> pulumi.ResourceOptions:
    """Options of a component's child: parented (and so inheriting its providers)."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)  # type: ignore[arg-type]


def policy_document(*statements: Mapping[str, Any]) -> str:
    """An IAM policy document (JSON) of ``statements``."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def logs_key_policy(*, account: str, region: str) -> str:
    """Key policy of a KMS key that encrypts CloudWatch log groups of ``account``."""
    return policy_document(
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncrypt",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:aws:logs:{region}:{account}:log-group:*"
                    )
                }
            },
        },
    )


def kms_key(
    parent: pulumi.Resource,
    name: str,
    *,
    purpose: str,
    tags: Mapping[str, str],
    for_logs: bool = False,
    protect: bool = False,
) -> aws.kms.Key:
    """A KMS key with yearly rotation and a 30-day deletion window; ``for_logs`` adds the
    key policy CloudWatch Logs needs to encrypt log groups with it."""
    policy = None
    if for_logs:
        invoke = pulumi.InvokeOutputOptions(parent=parent)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        policy = pulumi.Output.all(account, region).apply(
            lambda a: logs_key_policy(account=a[0], region=a[1])
        )
    return aws.kms.Key(
        name,
        description=purpose,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        tags=named(tags, name),
        opts=child(parent, protect=protect),
    )


def service_role(
    parent: pulumi.Resource,
    name: str,
    *,
    service: str,
    managed_policies: Sequence[str],
    tags: Mapping[str, str],
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """An IAM role that the AWS ``service`` assumes, with AWS-managed policies attached."""
    role = aws.iam.Role(
        name,
        assume_role_policy=policy_document(
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ),
        tags=named(tags, name),
        opts=child(parent),
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}",
            opts=child(parent),
        )
        for policy in managed_policies
    ]
    return role, attachments


def allow(
    parent: pulumi.Resource,
    name: str,
    *,
    role: aws.iam.Role,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
) -> aws.iam.RolePolicy:
    """An inline policy of ``role`` allowing ``actions`` on ``resources`` (and nothing else)."""
    return aws.iam.RolePolicy(
        name,
        role=role.id,
        policy=pulumi.Output.all(*resources).apply(
            lambda arns: policy_document(
                {"Effect": "Allow", "Action": list(actions), "Resource": list(arns)}
            )
        ),
        opts=child(parent),
    )


def helm_release(
    parent: pulumi.Resource,
    name: str,
    *,
    release: str,
    namespace: pulumi.Input[str],
    chart: str,
    values: pulumi.Input[Mapping[str, Any]],
    version: str | None = None,
    repository: str | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> k8s.helm.v3.Release:
    """A Helm release that waits until its resources are ready and rolls back on failure."""
    return k8s.helm.v3.Release(
        name,
        name=release,
        namespace=namespace,
        chart=chart,
        version=version,
        repository_opts={"repo": repository} if repository else None,
        values=values,
        atomic=True,
        opts=child(parent, depends_on=list(depends_on)),
    )
