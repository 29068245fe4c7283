"""Workflows: Argo Workflows from its pinned chart and the retraining schedule.

The WorkflowTemplate and CronWorkflow come from the rendered files in
`deploy/pipelines/`, fitted to the stack by `workflow_specs.for_stack`. The
executor runs as its own service account, bound to its IRSA role, with only
the namespaced rights the executor needs.
"""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from cloudguard_platform import constants as c
from cloudguard_platform import kube
from cloudguard_platform.workflow_specs import PipelineManifests


@dataclass(frozen=True)
class WorkflowsArgs:
    """Inputs of `Workflows`."""

    pipeline: PipelineManifests
    provider: k8s.Provider
    namespaces: list[pulumi.Resource]


def executor_role(stack: str) -> dict[str, object]:
    """RBAC the Argo executor needs in the app namespace (emissary executor)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": c.SA_WORKFLOW_EXECUTOR,
            "namespace": c.NS_APP,
            "labels": {"cloudguard.io/stack": stack},
        },
        "rules": [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["workflowtaskresults"],
                "verbs": ["create", "patch"],
            }
        ],
    }


def executor_binding(stack: str) -> dict[str, object]:
    """Bind the executor Role to the executor service account."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": c.SA_WORKFLOW_EXECUTOR,
            "namespace": c.NS_APP,
            "labels": {"cloudguard.io/stack": stack},
        },
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": c.SA_WORKFLOW_EXECUTOR,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": c.SA_WORKFLOW_EXECUTOR,
                "namespace": c.NS_APP,
            }
        ],
    }


class Workflows(pulumi.ComponentResource):
    """Argo Workflows, the executor's RBAC, the template and its CronWorkflow."""

    def __init__(
        self, name: str, args: WorkflowsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudguard:workflows:Workflows", name, None, opts)
        base = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=args.namespaces
        )
        stack = pulumi.get_stack()

        release = kube.helm_release(
            f"{name}-argo-workflows",
            c.ARGO_WORKFLOWS,
            c.NS_WORKFLOWS,
            {
                "controller": {"workflowNamespaces": [c.NS_APP]},
                "server": {"authModes": ["client"], "serviceType": "ClusterIP"},
                "workflow": {
                    "serviceAccount": {"create": False},
                    "rbac": {"create": False},
                },
            },
            base,
        )
        kube.apply(f"{name}-executor-role", executor_role(stack), base)
        kube.apply(f"{name}-executor-binding", executor_binding(stack), base)

        after_crds = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=[release]
        )
        template = kube.apply(
            f"{name}-template", args.pipeline.workflow_template, after_crds
        )
        kube.apply(
            f"{name}-cron",
            args.pipeline.cron_workflow,
            pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[release, template]
            ),
        )

        self.register_outputs({"chartVersion": c.ARGO_WORKFLOWS.version})
