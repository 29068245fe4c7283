"""Node autoscaling: Karpenter with its own IRSA role and per-stack limits.

Karpenter launches nodes for pending pods within the NodePool's CPU and memory
limits from stack config, so dev stays small and prod can grow. Its nodes use
their own role (registered with an EKS access entry) and the same IMDSv2
settings as the managed node group.
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from cloudguard_platform import constants as c
from cloudguard_platform import kube, manifests
from cloudguard_platform.identity import IrsaRole, IrsaRoleArgs
from cloudguard_platform.network import node_policy_arns
from cloudguard_platform.policies import (
    INTERRUPTION_EVENTS,
    assume_role_policy,
    interruption_queue_policy,
    karpenter_policy,
)
from cloudguard_platform.settings import Settings


@dataclass(frozen=True)
class NodeAutoscalingArgs:
    """Inputs of `NodeAutoscaling`."""

    settings: Settings
    cluster_name: str
    cluster_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    provider: k8s.Provider
    namespace: pulumi.Resource


class NodeAutoscaling(pulumi.ComponentResource):
    """Karpenter controller, node role, NodePool and EC2NodeClass."""

    def __init__(
        self,
        name: str,
        args: NodeAutoscalingArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cloudguard:autoscaling:NodeAutoscaling", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        node_role = aws.iam.Role(
            f"{name}-node",
            name=f"cloudguard-{s.stack}-karpenter-node",
            assume_role_policy=pulumi.Output.json_dumps(
                assume_role_policy("ec2.amazonaws.com")
            ),
            opts=child,
        )
        for index, arn in enumerate(node_policy_arns()):
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{index}", role=node_role.name, policy_arn=arn, opts=child
            )
        aws.eks.AccessEntry(
            f"{name}-node",
            cluster_name=args.cluster_name,
            principal_arn=node_role.arn,
            type="EC2_LINUX",
            opts=child,
        )
        queue = self._create_interruption_queue(name, s, child)
        controller = IrsaRole(
            f"{name}-controller",
            IrsaRoleArgs(
                namespace=c.NS_KARPENTER,
                service_account=c.SA_KARPENTER,
                oidc_issuer=args.oidc_issuer,
                oidc_provider_arn=args.oidc_provider_arn,
                policy=pulumi.Output.all(
                    args.cluster_arn, node_role.arn, queue.arn
                ).apply(
                    lambda arns: karpenter_policy(
                        args.cluster_name, arns[0], arns[1], s.region, arns[2]
                    )
                ),
            ),
            opts=child,
        )

        kube_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[args.namespace]
        )
        release = kube.helm_release(
            f"{name}-karpenter",
            c.KARPENTER,
            c.NS_KARPENTER,
            {
                "settings": {
                    "clusterName": args.cluster_name,
                    "interruptionQueue": queue.name,
                },
                "serviceAccount": {
                    "name": c.SA_KARPENTER,
                    "annotations": {"eks.amazonaws.com/role-arn": controller.arn},
                },
                "replicas": 1 if s.stack == "dev" else 2,
                "controller": {
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    }
                },
            },
            kube_opts,
        )
        after_crds = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[release]
        )
        node_class = node_role.name.apply(
            lambda role: manifests.ec2_node_class(s, role, args.cluster_name)
        )
        kube.apply(f"{name}-node-class", _resolved(node_class, s, args), after_crds)
        kube.apply(f"{name}-node-pool", manifests.node_pool(s), after_crds)

        self.register_outputs(
            {
                "controllerRoleArn": controller.arn,
                "cpuLimit": s.node_autoscaling.cpu_limit,
            }
        )

    def _create_interruption_queue(
        self, name: str, s: Settings, child: pulumi.ResourceOptions
    ) -> aws.sqs.Queue:
        # Spot interruptions and rebalance hints reach Karpenter through SQS,
        # so it drains a node before AWS takes it away.
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=f"cloudguard-{s.stack}-karpenter",
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=queue.arn.apply(
                lambda arn: json.dumps(interruption_queue_policy(arn))
            ),
            opts=child,
        )
        for index, (source, detail) in enumerate(INTERRUPTION_EVENTS):
            rule = aws.cloudwatch.EventRule(
                f"{name}-interruptions-{index}",
                event_pattern=json.dumps({"source": [source], "detail-type": [detail]}),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-interruptions-{index}",
                rule=rule.name,
                arn=queue.arn,
                opts=child,
            )
        return queue


def _resolved(
    node_class: pulumi.Output[dict[str, object]], s: Settings, args: NodeAutoscalingArgs
) -> dict[str, object]:
    # kube.apply needs apiVersion/kind eagerly; only the spec waits on the role.
    shape = manifests.ec2_node_class(s, "", args.cluster_name)
    return shape | {"spec": node_class.apply(lambda m: m["spec"])}
