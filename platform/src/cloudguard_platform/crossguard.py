"""CrossGuard adapters: the `guard` rules as pulumi-policy validation policies.

`platform/policy/__main__.py` builds the pack from `build_policies()`, so the
rules a real `pulumi preview --policy-pack platform/policy` enforces are the
very functions the offline tests run.
"""

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from cloudguard_platform.guard import RULES, Rule

PACK_NAME = "cloudguard-security"

ReportViolation = Callable[..., None]


def _validator(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(
        args: ResourceValidationArgs, report_violation: ReportViolation
    ) -> None:
        props: Any = args.props
        for problem in rule.check(args.resource_type, props):
            report_violation(f"{args.name}: {problem}")

    return validate


def build_policies() -> list[ResourceValidationPolicy]:
    """One mandatory resource policy per guard rule."""
    return [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in RULES
    ]
