"""The CloudGuard Pulumi program: one function, every environment.

`run()` builds the whole stack from the settings of the selected stack. Nothing
happens on import; `__main__.py` calls `run()` under the Pulumi engine, and the
offline synth and the tests call it under `pulumi.runtime.set_mocks`.
"""

import logging
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from cloudguard_platform import constants as c
from cloudguard_platform import kube, manifests, policies
from cloudguard_platform.autoscaling import NodeAutoscaling, NodeAutoscalingArgs
from cloudguard_platform.database import MlflowDatabase, MlflowDatabaseArgs
from cloudguard_platform.delivery import Delivery, DeliveryArgs
from cloudguard_platform.gitops import GitOps, GitOpsArgs
from cloudguard_platform.identity import IrsaRole, IrsaRoleArgs
from cloudguard_platform.network import NetworkCluster, NetworkClusterArgs
from cloudguard_platform.settings import Settings, load_settings
from cloudguard_platform.storage import Storage, StorageArgs
from cloudguard_platform.workflow_specs import (
    default_pipeline_dir,
    for_stack,
    load_pipeline_manifests,
)
from cloudguard_platform.workflows import Workflows, WorkflowsArgs

_logger = logging.getLogger(__name__)

API_KEYS_CONFIG = "servingApiKeys"
NAMESPACES = (
    c.NS_APP,
    c.NS_ARGOCD,
    c.NS_WORKFLOWS,
    c.NS_ROLLOUTS,
    c.NS_KARPENTER,
    c.NS_MONITORING,
)


def run(pipeline_dir: Path | None = None) -> None:
    """Declare every resource of the current stack."""
    settings = load_settings()
    api_keys = pulumi.Config("cloudguard").require_secret(API_KEYS_CONFIG)
    pipeline = for_stack(
        load_pipeline_manifests(pipeline_dir or default_pipeline_dir()), settings
    )
    _logger.info("program_start stack=%s", settings.stack)

    # Cloud foundations: network, cluster, data, database.
    network = NetworkCluster("cloudguard", NetworkClusterArgs(settings))
    storage = Storage("cloudguard-data", StorageArgs(settings))
    database = MlflowDatabase(
        "cloudguard-mlflow-db",
        MlflowDatabaseArgs(
            settings=settings,
            vpc_id=network.vpc_id,
            subnet_ids=list(network.private_subnet_ids),
            key_arn=storage.key_arn,
        ),
    )
    roles = _create_service_roles(settings, network, storage, database.secret_arn)

    # Kubernetes plumbing Pulumi owns: namespaces, identities, runtime values.
    provider = k8s.Provider(
        "cloudguard-k8s", kubeconfig=network.kubeconfig, enable_server_side_apply=True
    )
    k8s_opts = pulumi.ResourceOptions(provider=provider)
    namespaces = {
        ns: kube.apply(f"ns-{ns}", manifests.namespace(ns, settings.stack), k8s_opts)
        for ns in NAMESPACES
    }
    in_app = pulumi.ResourceOptions(
        provider=provider, depends_on=[namespaces[c.NS_APP]]
    )
    for account, role in roles.items():
        kube.apply(
            f"sa-{account}",
            manifests.service_account(account, c.NS_APP, role.arn, settings.stack),
            in_app,
        )
    runtime = manifests.runtime_config({}, settings.stack) | {
        "data": pulumi.Output.all(database.endpoint, database.secret_arn).apply(
            lambda refs: manifests.runtime_values(settings, refs[0], refs[1])
        )
    }
    kube.apply("runtime-config", runtime, in_app)
    k8s.core.v1.Secret(
        "serving-api-keys",
        metadata={
            "name": c.API_KEYS_SECRET,
            "namespace": c.NS_APP,
            "labels": manifests.labels(c.SERVING_APP, settings.stack),
        },
        type="Opaque",
        string_data={"keys": api_keys},
        opts=in_app,
    )

    # Platform services: GitOps, delivery, workflows, node autoscaling.
    GitOps(
        "cloudguard-gitops",
        GitOpsArgs(settings, provider, namespaces[c.NS_ARGOCD]),
    )
    Delivery(
        "cloudguard-delivery",
        DeliveryArgs(
            provider, [namespaces[c.NS_ROLLOUTS], namespaces[c.NS_MONITORING]]
        ),
    )
    Workflows(
        "cloudguard-workflows",
        WorkflowsArgs(
            pipeline, provider, [namespaces[c.NS_WORKFLOWS], namespaces[c.NS_APP]]
        ),
    )
    caller = aws.get_caller_identity_output()
    cluster_arn = pulumi.Output.concat(
        "arn:aws:eks:",
        settings.region,
        ":",
        caller.account_id,
        ":cluster/",
        network.cluster_name,
    )
    NodeAutoscaling(
        "cloudguard-autoscaling",
        NodeAutoscalingArgs(
            settings=settings,
            cluster_name=network.cluster_name,
            cluster_arn=cluster_arn,
            oidc_issuer=network.oidc_issuer,
            oidc_provider_arn=network.oidc_provider_arn,
            provider=provider,
            namespace=namespaces[c.NS_KARPENTER],
        ),
    )

    pulumi.export("clusterName", network.cluster_name)
    pulumi.export("kubeconfig", pulumi.Output.secret(network.kubeconfig))
    pulumi.export(
        "buckets",
        {purpose: settings.bucket_name(purpose) for purpose in storage.bucket_arns},
    )
    pulumi.export("roleArns", {account: role.arn for account, role in roles.items()})
    pulumi.export("mlflowDatabaseEndpoint", database.endpoint)


def _create_service_roles(
    settings: Settings,
    network: NetworkCluster,
    storage: Storage,
    db_secret_arn: pulumi.Output[str],
) -> dict[str, IrsaRole]:
    """One IRSA role per workload service account, least privilege each."""
    arns = storage.bucket_arns
    raw, artifacts, inference = (
        arns[c.BUCKET_RAW],
        arns[c.BUCKET_ARTIFACTS],
        arns[c.BUCKET_INFERENCE],
    )
    key = storage.key_arn
    documents = {
        c.SA_TRAINER: pulumi.Output.all(raw, artifacts, key).apply(
            lambda a: policies.trainer_policy(a[0], a[1], a[2])
        ),
        c.SA_SERVING: pulumi.Output.all(artifacts, inference, key).apply(
            lambda a: policies.serving_policy(a[0], a[1], a[2])
        ),
        c.SA_MLFLOW: pulumi.Output.all(artifacts, key, db_secret_arn).apply(
            lambda a: policies.mlflow_policy(a[0], a[1], a[2])
        ),
        c.SA_WORKFLOW_EXECUTOR: pulumi.Output.all(raw, artifacts, key).apply(
            lambda a: policies.workflow_executor_policy(a[0], a[1], a[2])
        ),
    }
    return {
        account: IrsaRole(
            account,
            IrsaRoleArgs(
                namespace=c.NS_APP,
                service_account=account,
                oidc_issuer=network.oidc_issuer,
                oidc_provider_arn=network.oidc_provider_arn,
                policy=document,
            ),
        )
        for account, document in documents.items()
    }
