"""CrossGuard pack for CloudGuard: `pulumi preview --policy-pack platform/policy`.

The rules live in `cloudguard_platform.guard` (unit-tested there); this file
only registers them with the policy engine.
"""

from cloudguard_platform.crossguard import PACK_NAME, build_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
