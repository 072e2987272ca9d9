"""What every component shares: the tags of the stack and child resource options."""

from __future__ import annotations

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
