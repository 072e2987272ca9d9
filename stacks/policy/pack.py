"""The policy pack object: each rule of :data:`policies.POLICIES` as a mandatory
``ResourceValidationPolicy``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from stacks.policy.policies import POLICIES, Validate


def adapt(validate: Validate) -> Callable[[ResourceValidationArgs, Callable[..., None]], None]:
    """A pulumi_policy validate function calling ``validate`` with the resource's type and
    properties."""

    def run(args: ResourceValidationArgs, report_violation: Callable[..., None]) -> None:
        validate(args.resource_type, args.props, lambda message: report_violation(message, None))

    return run


def policies() -> list[ResourceValidationPolicy]:
    """The pack's policies."""
    return [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=adapt(validate),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, (description, validate) in POLICIES.items()
    ]


def pack() -> Any:
    """Register the pack (inside ``pulumi preview --policy-pack``)."""
    return PolicyPack(name="mirage", policies=list(policies()))
