"""Identity: one IAM role per Kubernetes service account (IRSA).

The trust policy comes from `policies.irsa_trust_policy`, the permissions from
the matching pure function in `policies`; this component only wires them.
"""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from cloudguard_platform.policies import irsa_trust_policy


@dataclass(frozen=True)
class IrsaRoleArgs:
    """Inputs of `IrsaRole`."""

    namespace: str
    service_account: str
    oidc_issuer: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    policy: pulumi.Input[dict[str, Any]]
    """Identity policy document (may hold Outputs such as bucket ARNs)."""


class IrsaRole(pulumi.ComponentResource):
    """An IAM role only `namespace/service_account` can assume, with one policy."""

    arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: IrsaRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudguard:identity:IrsaRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        trust = pulumi.Output.all(args.oidc_issuer, args.oidc_provider_arn).apply(
            lambda pair: irsa_trust_policy(
                pair[0], pair[1], args.namespace, args.service_account
            )
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.json_dumps(trust),
            max_session_duration=3600,
            tags={
                "cloudguard:service-account": f"{args.namespace}/{args.service_account}"
            },
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(args.policy),
            opts=child,
        )
        self.arn = role.arn
        self.role_name = role.name

        self.register_outputs({"arn": role.arn})
