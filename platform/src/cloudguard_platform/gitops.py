"""GitOps: Argo CD from its pinned chart and the stack's root Application.

The root Application syncs `deploy/apps/<stack>/applications`, whose child
Applications deploy the serving Rollout and MLflow. After `pulumi up`, changes
to those workloads go through git, not through Pulumi.
"""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from cloudguard_platform import constants as c
from cloudguard_platform import kube, manifests
from cloudguard_platform.settings import Settings


@dataclass(frozen=True)
class GitOpsArgs:
    """Inputs of `GitOps`."""

    settings: Settings
    provider: k8s.Provider
    namespace: pulumi.Resource


class GitOps(pulumi.ComponentResource):
    """Argo CD and the app-of-apps."""

    def __init__(
        self, name: str, args: GitOpsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudguard:gitops:GitOps", name, None, opts)
        child = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[args.namespace]
        )

        argocd = kube.helm_release(
            f"{name}-argocd",
            c.ARGO_CD,
            c.NS_ARGOCD,
            {
                "dex": {"enabled": False},
                "server": {"service": {"type": "ClusterIP"}},
                "configs": {"params": {"server.insecure": False}},
            },
            child,
        )
        kube.apply(
            f"{name}-root",
            manifests.root_application(args.settings),
            pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[argocd]
            ),
        )

        self.register_outputs({"chartVersion": c.ARGO_CD.version})
