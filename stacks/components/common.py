"""What every component shares: the tags of the stack and child resource options."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi

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


def logs_key_policy(*, account: str, region: str) -> str:
    """Key policy of a KMS key that encrypts CloudWatch log groups of ``account``."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
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
            ],
        }
    )
