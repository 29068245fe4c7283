"""The whole program per stack under Pulumi mocks: the inputs that matter.

pulumi-eks's Cluster is a multi-language component; under mocks it is one
resource of type `eks:index:Cluster` whose outputs the mocks supply, so these
tests assert on the inputs we give it, not on the children it would create.
"""

import json
import subprocess
import sys
from typing import Any

import pytest
from cloudguard_platform import STACKS, SynthResult, constants, guard, manifests
from cloudguard_platform.synth import MockedResource

BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _by_bucket(result: SynthResult, type_: str) -> dict[str, MockedResource]:
    # Child resources reference the bucket by its mocked id, "<logical>-id".
    return {r.inputs["bucket"].removesuffix("-id"): r for r in result.of_type(type_)}


def _policy(resource: MockedResource, key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resource.inputs[key])
    return document


@pytest.mark.parametrize("stack", STACKS)
def test_every_bucket_is_locked_down(
    synths: dict[str, SynthResult], stack: str
) -> None:
    result = synths[stack]
    buckets = result.of_type(BUCKET)
    blocks = _by_bucket(
        result, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    )
    encryption = _by_bucket(
        result,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    versioning = _by_bucket(result, "aws:s3/bucketVersioning:BucketVersioning")
    bucket_policies = _by_bucket(result, "aws:s3/bucketPolicy:BucketPolicy")
    ownership = _by_bucket(
        result, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    )

    assert sorted(b.inputs["bucket"] for b in buckets) == sorted(
        f"cloudguard-{stack}-{p}" for p in ("artifacts", "inference-logs", "raw-data")
    )
    for bucket in buckets:
        name = bucket.name
        assert all(
            blocks[name].inputs[flag] is True
            for flag in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        (rule,) = encryption[name].inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms"
        assert default["kmsMasterKeyId"].startswith("arn:aws:kms:")
        assert versioning[name].inputs["versioningConfiguration"] == {
            "status": "Enabled"
        }
        (deny,) = _policy(bucket_policies[name])["Statement"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert ownership[name].inputs["rule"] == {
            "objectOwnership": "BucketOwnerEnforced"
        }
        assert bucket.inputs["forceDestroy"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_only_inference_logs_expire(synths: dict[str, SynthResult], stack: str) -> None:
    result = synths[stack]
    (lifecycle,) = result.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )

    assert lifecycle.inputs["bucket"] == "cloudguard-data-inference-logs-id"
    (rule,) = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"] == {"days": result.settings.inference_log_retention_days}


def test_data_is_protected_and_retained_in_prod_only(
    synths: dict[str, SynthResult],
) -> None:
    for stack, expected in (("dev", False), ("staging", False), ("prod", True)):
        result = synths[stack]
        guarded = result.of_type(BUCKET) + result.of_type("aws:rds/instance:Instance")
        assert {r.protect for r in guarded} == {expected}, stack
        assert {r.retain_on_delete for r in result.of_type(BUCKET)} == {expected}, stack


def _role_policies(result: SynthResult) -> dict[str, dict[str, Any]]:
    return {
        r.name.removesuffix("-policy"): _policy(r) for r in result.of_type(ROLE_POLICY)
    }


def _allowed(document: dict[str, Any]) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            grants.setdefault(resource, set()).update(statement["Action"])
    return grants


def test_each_service_role_reaches_only_its_buckets(
    synths: dict[str, SynthResult],
) -> None:
    policies = _role_policies(synths["prod"])
    raw, art, inf = (
        f"arn:aws:s3:::cloudguard-prod-{p}"
        for p in ("raw-data", "artifacts", "inference-logs")
    )

    trainer = _allowed(policies["cloudguard-trainer"])
    serving = _allowed(policies["cloudguard-serving"])
    mlflow = _allowed(policies["cloudguard-mlflow"])
    assert "s3:PutObject" in trainer[f"{art}/*"]
    assert "s3:PutObject" not in trainer[f"{raw}/*"]
    assert f"{inf}/*" not in trainer
    assert serving[f"{inf}/*"] == {"s3:PutObject"}
    assert "s3:PutObject" not in serving[f"{art}/*"]
    assert f"{raw}/*" not in serving
    assert f"{raw}/*" not in mlflow
    assert f"{inf}/*" not in mlflow
    assert any(r.startswith("arn:aws:secretsmanager:") for r in mlflow)


@pytest.mark.parametrize("stack", STACKS)
def test_no_identity_policy_allows_wildcards_or_deletes(
    synths: dict[str, SynthResult], stack: str
) -> None:
    for name, document in _role_policies(synths[stack]).items():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", name
            for action in statement["Action"]:
                assert "*" not in action, (name, action)
                assert not action.startswith("s3:Delete"), (name, action)


@pytest.mark.parametrize("stack", STACKS)
def test_every_irsa_trust_pins_one_service_account(
    synths: dict[str, SynthResult], stack: str
) -> None:
    expected = {
        "cloudguard-trainer-role": "cloudguard:cloudguard-trainer",
        "cloudguard-serving-role": "cloudguard:cloudguard-serving",
        "cloudguard-mlflow-role": "cloudguard:cloudguard-mlflow",
        "cloudguard-workflow-executor-role": "cloudguard:cloudguard-workflow-executor",
        "cloudguard-autoscaling-controller-role": "karpenter:karpenter",
    }
    roles = {
        r.name: _policy(r, "assumeRolePolicy") for r in synths[stack].of_type(ROLE)
    }

    for role, subject in expected.items():
        (statement,) = roles[role]["Statement"]
        equals = statement["Condition"]["StringEquals"]
        (sub,) = [k for k in equals if k.endswith(":sub")]
        (aud,) = [k for k in equals if k.endswith(":aud")]
        assert equals[sub] == f"system:serviceaccount:{subject}"
        assert equals[aud] == "sts.amazonaws.com"
        assert statement["Principal"]["Federated"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_is_pinned_private_and_logged(
    synths: dict[str, SynthResult], stack: str
) -> None:
    (cluster,) = synths[stack].of_type("eks:index:Cluster")
    settings = synths[stack].settings

    assert cluster.inputs["version"] == settings.kubernetes_version
    assert cluster.inputs["endpointPrivateAccess"] is True
    assert cluster.inputs["endpointPublicAccess"] is bool(settings.api_public_cidrs)
    assert cluster.inputs.get("publicAccessCidrs", []) == list(
        settings.api_public_cidrs
    )
    assert cluster.inputs["createOidcProvider"] is True
    assert set(cluster.inputs["enabledClusterLogTypes"]) >= {
        "api",
        "audit",
        "authenticator",
    }


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_require_imdsv2_with_hop_limit_one(
    synths: dict[str, SynthResult], stack: str
) -> None:
    result = synths[stack]
    (template,) = result.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    (group,) = result.of_type("aws:eks/nodeGroup:NodeGroup")
    (node_class,) = [
        m for m in result.kubernetes_manifests() if m["kind"] == "EC2NodeClass"
    ]

    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert node_class["spec"]["metadataOptions"]["httpTokens"] == "required"
    assert node_class["spec"]["metadataOptions"]["httpPutResponseHopLimit"] == 1
    sizes = result.settings.node_group
    assert group.inputs["scalingConfig"] == {
        "minSize": sizes.min_size,
        "desiredSize": sizes.desired_size,
        "maxSize": sizes.max_size,
    }


@pytest.mark.parametrize("stack", STACKS)
def test_database_is_private_encrypted_and_keeps_no_password(
    synths: dict[str, SynthResult], stack: str
) -> None:
    (db,) = synths[stack].of_type("aws:rds/instance:Instance")

    assert db.inputs["publiclyAccessible"] is False
    assert db.inputs["storageEncrypted"] is True
    assert db.inputs["manageMasterUserPassword"] is True
    assert "password" not in db.inputs
    assert db.inputs["deletionProtection"] is (stack == "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_helm_charts_are_pinned_to_the_declared_versions(
    synths: dict[str, SynthResult], stack: str
) -> None:
    releases = {
        r.inputs["name"]: r.inputs
        for r in synths[stack].of_type("kubernetes:helm.sh/v3:Release")
    }

    assert set(releases) == {chart.name for chart in constants.CHARTS}
    for chart in constants.CHARTS:
        assert releases[chart.name]["version"] == chart.version
        assert releases[chart.name]["atomic"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_cron_workflow_runs_the_pipeline_on_the_stack_schedule(
    synths: dict[str, SynthResult], stack: str
) -> None:
    result = synths[stack]
    by_kind = {m["kind"]: m for m in result.kubernetes_manifests()}
    cron, template = by_kind["CronWorkflow"], by_kind["WorkflowTemplate"]
    pipeline = result.settings.pipeline

    spec = cron["spec"]
    assert spec["schedules"] == [pipeline.schedule]
    assert spec["timezone"] == pipeline.timezone
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == pipeline.starting_deadline_seconds
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    assert (
        spec["workflowSpec"]["workflowTemplateRef"]["name"]
        == template["metadata"]["name"]
    )
    assert spec["workflowSpec"]["executor"]["serviceAccountName"] == (
        constants.SA_WORKFLOW_EXECUTOR
    )
    images = {
        t["container"]["image"]
        for t in template["spec"]["templates"]
        if "container" in t
    }
    assert images == {result.settings.trainer_image}


@pytest.mark.parametrize("stack", STACKS)
def test_root_application_syncs_the_stack_tree_automatically(
    synths: dict[str, SynthResult], stack: str
) -> None:
    (app,) = [
        m for m in synths[stack].kubernetes_manifests() if m["kind"] == "Application"
    ]

    assert app["spec"]["source"]["path"] == f"deploy/apps/{stack}/applications"
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert policy["retry"]["backoff"]["factor"] >= 2


def test_prod_holds_the_canary_analysis_hpa_pdb_and_node_autoscaler(
    synths: dict[str, SynthResult],
) -> None:
    result = synths["prod"]
    tree = manifests.gitops_tree(result.settings)
    rollout = tree["serving/rollout.yaml"][0]
    analysis = tree["serving/analysis-template.yaml"][0]
    hpa = tree["serving/hpa.yaml"][0]
    node_pools = [m for m in result.kubernetes_manifests() if m["kind"] == "NodePool"]

    canary = rollout["spec"]["strategy"]["canary"]
    weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
    assert weights == [5, 25, 100]
    assert sum("pause" in s for s in canary["steps"]) == 2
    assert canary["analysis"]["templates"] == [
        {"templateName": analysis["metadata"]["name"]}
    ]
    assert {m["name"] for m in analysis["spec"]["metrics"]} == {
        "error-ratio",
        "p99-latency-seconds",
        "failure-share-delta",
    }
    assert all(m["failureLimit"] == 1 for m in analysis["spec"]["metrics"])
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    assert {m["type"] for m in hpa["spec"]["metrics"]} == {"Resource", "Pods"}
    assert tree["serving/pdb.yaml"][0]["spec"]["maxUnavailable"] == 1
    assert node_pools[0]["spec"]["limits"]["cpu"] == "400"


@pytest.mark.parametrize("stack", STACKS)
def test_karpenter_hears_spot_interruptions_through_its_queue(
    synths: dict[str, SynthResult], stack: str
) -> None:
    result = synths[stack]
    (queue,) = result.of_type("aws:sqs/queue:Queue")
    (policy,) = result.of_type("aws:sqs/queuePolicy:QueuePolicy")
    targets = result.of_type("aws:cloudwatch/eventTarget:EventTarget")
    (karpenter,) = [
        r
        for r in result.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["name"] == "karpenter"
    ]
    queue_arn = (
        f"arn:aws:sqs:{result.settings.region}:123456789012:{queue.inputs['name']}"
    )

    assert (
        karpenter.inputs["values"]["settings"]["interruptionQueue"]
        == queue.inputs["name"]
    )
    assert {t.inputs["arn"] for t in targets} == {queue_arn}
    assert len(targets) == 4
    assert policy.inputs["queueUrl"].endswith(queue.inputs["name"])
    assert queue.inputs["sqsManagedSseEnabled"] is True


def test_dev_stays_smaller_than_prod(synths: dict[str, SynthResult]) -> None:
    def pool_cpu(stack: str) -> int:
        (pool,) = [
            m for m in synths[stack].kubernetes_manifests() if m["kind"] == "NodePool"
        ]
        return int(pool["spec"]["limits"]["cpu"])

    assert pool_cpu("dev") < pool_cpu("staging") < pool_cpu("prod")
    assert len(synths["dev"].of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(synths["prod"].of_type("aws:ec2/natGateway:NatGateway")) == 3


@pytest.mark.parametrize("stack", STACKS)
def test_every_declared_resource_passes_the_policy_pack_rules(
    synths: dict[str, SynthResult], stack: str
) -> None:
    found = [
        (r.type, r.name, problem)
        for r in synths[stack].resources
        for problem in guard.violations(r.type, r.inputs)
    ]

    assert found == []


def test_importing_the_program_declares_nothing() -> None:
    # A fresh interpreter, so every module really is imported for the first time.
    script = """
import pulumi
from cloudguard_platform.synth import PlatformMocks
mocks = PlatformMocks("eu-central-1")
pulumi.runtime.set_mocks(mocks, project="cloudguard", stack="dev", preview=False)
import cloudguard_platform.program, cloudguard_platform.network
import cloudguard_platform.storage, cloudguard_platform.autoscaling
print(len(mocks.resources))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert done.stdout.strip() == "0"


def test_app_namespace_enforces_the_restricted_pod_security_standard(
    synths: dict[str, SynthResult],
) -> None:
    namespaces = {
        m["metadata"]["name"]: m["metadata"]["labels"]
        for m in synths["prod"].kubernetes_manifests()
        if m["kind"] == "Namespace"
    }
    enforce = "pod-security.kubernetes.io/enforce"

    assert namespaces["cloudguard"][enforce] == "restricted"
    assert {labels[enforce] for labels in namespaces.values()} <= {
        "restricted",
        "baseline",
    }
