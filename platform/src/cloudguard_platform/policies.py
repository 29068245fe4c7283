"""IAM and bucket policy documents, built by pure functions.

Every document the program attaches comes from here, so tests (and reviewers)
can read exactly what each principal may do without running Pulumi. Documents
are plain dicts in the AWS policy grammar; the program serialises them.
"""

from collections.abc import Sequence
from typing import Any

from cloudguard_platform.errors import PlatformError

PolicyDocument = dict[str, Any]

_VERSION = "2012-10-17"

# Object-level actions, split so no role gets more than it needs. Nobody gets
# s3:DeleteObject: old objects expire through lifecycle rules, not principals.
_READ_OBJECTS = ("s3:GetObject", "s3:GetObjectVersion")
_WRITE_OBJECTS = ("s3:PutObject",)
_LIST_BUCKET = ("s3:ListBucket", "s3:GetBucketLocation")
_USE_KEY = ("kms:Decrypt", "kms:GenerateDataKey")


def irsa_trust_policy(
    issuer_url: str, provider_arn: str, namespace: str, service_account: str
) -> PolicyDocument:
    """Trust policy letting exactly one Kubernetes service account assume a role.

    `issuer_url` is the cluster's OIDC issuer with or without `https://`; the
    condition keys use it without the scheme, as STS expects.
    """
    if not provider_arn.startswith("arn:") or ":oidc-provider/" not in provider_arn:
        raise PlatformError(
            f"provider ARN {provider_arn!r} is not an IAM OIDC provider ARN; "
            "pass the cluster's oidc_provider_arn"
        )
    if not namespace or not service_account:
        raise PlatformError(
            f"namespace {namespace!r} / service account {service_account!r} "
            "must both be set; a trust policy never covers a whole namespace"
        )
    issuer = issuer_url.removeprefix("https://").rstrip("/")

    return {
        "Version": _VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": (
                            f"system:serviceaccount:{namespace}:{service_account}"
                        ),
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def _bucket_statements(
    sid: str, bucket_arn: str, actions: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {
            "Sid": f"{sid}List",
            "Effect": "Allow",
            "Action": list(_LIST_BUCKET),
            "Resource": bucket_arn,
        },
        {
            "Sid": sid,
            "Effect": "Allow",
            "Action": list(actions),
            "Resource": f"{bucket_arn}/*",
        },
    ]


def _key_statement(key_arn: str) -> dict[str, Any]:
    return {
        "Sid": "UseBucketKey",
        "Effect": "Allow",
        "Action": list(_USE_KEY),
        "Resource": key_arn,
    }


def trainer_policy(
    raw_bucket_arn: str, artifact_bucket_arn: str, key_arn: str
) -> PolicyDocument:
    """The trainer (and pipeline steps) read raw data and write artifacts."""
    return {
        "Version": _VERSION,
        "Statement": [
            *_bucket_statements("ReadRawData", raw_bucket_arn, _READ_OBJECTS),
            *_bucket_statements(
                "ReadWriteArtifacts",
                artifact_bucket_arn,
                _READ_OBJECTS + _WRITE_OBJECTS,
            ),
            _key_statement(key_arn),
        ],
    }


def serving_policy(
    artifact_bucket_arn: str, inference_bucket_arn: str, key_arn: str
) -> PolicyDocument:
    """Serving reads model artifacts and appends inference logs."""
    return {
        "Version": _VERSION,
        "Statement": [
            *_bucket_statements("ReadArtifacts", artifact_bucket_arn, _READ_OBJECTS),
            *_bucket_statements(
                "WriteInferenceLogs", inference_bucket_arn, _WRITE_OBJECTS
            ),
            _key_statement(key_arn),
        ],
    }


def mlflow_policy(
    artifact_bucket_arn: str, key_arn: str, database_secret_arn: str
) -> PolicyDocument:
    """MLflow proxies artifacts and reads its own database credentials."""
    return {
        "Version": _VERSION,
        "Statement": [
            *_bucket_statements(
                "ReadWriteArtifacts",
                artifact_bucket_arn,
                _READ_OBJECTS + _WRITE_OBJECTS,
            ),
            _key_statement(key_arn),
            {
                "Sid": "ReadDatabaseSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": database_secret_arn,
            },
        ],
    }


def workflow_executor_policy(
    raw_bucket_arn: str, artifact_bucket_arn: str, key_arn: str
) -> PolicyDocument:
    """The Argo executor stores step logs and outputs as artifacts."""
    return {
        "Version": _VERSION,
        "Statement": [
            *_bucket_statements("ReadRawData", raw_bucket_arn, _READ_OBJECTS),
            *_bucket_statements(
                "WorkflowArtifacts", artifact_bucket_arn, _READ_OBJECTS + _WRITE_OBJECTS
            ),
            _key_statement(key_arn),
        ],
    }


def karpenter_policy(
    cluster_name: str,
    cluster_arn: str,
    node_role_arn: str,
    region: str,
    queue_arn: str,
) -> PolicyDocument:
    """Karpenter launches and retires nodes of this cluster only.

    EC2 launch calls cannot be scoped to resources that do not exist yet, so
    they are scoped by the cluster tag Karpenter stamps on what it creates.
    """
    tag = f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}"
    owned = f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}"
    return {
        "Version": _VERSION,
        "Statement": [
            {
                "Sid": "LaunchTaggedNodes",
                "Effect": "Allow",
                "Action": [
                    "ec2:RunInstances",
                    "ec2:CreateFleet",
                    "ec2:CreateLaunchTemplate",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {tag: "owned", "aws:RequestedRegion": region}
                },
            },
            {
                "Sid": "UseSharedLaunchInputs",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": [
                    f"arn:aws:ec2:{region}::image/*",
                    f"arn:aws:ec2:{region}:*:subnet/*",
                    f"arn:aws:ec2:{region}:*:security-group/*",
                    f"arn:aws:ec2:{region}:*:launch-template/*",
                ],
            },
            {
                "Sid": "TagOnCreate",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        tag: "owned",
                        "ec2:CreateAction": [
                            "RunInstances",
                            "CreateFleet",
                            "CreateLaunchTemplate",
                        ],
                    }
                },
            },
            {
                "Sid": "RetireOwnedNodes",
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Resource": "*",
                "Condition": {"StringEquals": {owned: "owned"}},
            },
            {
                "Sid": "Discover",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                    "pricing:GetProducts",
                ],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
            },
            {
                "Sid": "ResolveAmis",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": f"arn:aws:ssm:{region}::parameter/aws/service/*",
            },
            {
                "Sid": "PassNodeRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": node_role_arn,
                "Condition": {
                    "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
                },
            },
            {
                "Sid": "ManageInstanceProfiles",
                "Effect": "Allow",
                "Action": [
                    "iam:GetInstanceProfile",
                    "iam:CreateInstanceProfile",
                    "iam:TagInstanceProfile",
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ],
                "Resource": "arn:aws:iam::*:instance-profile/*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"
                    }
                },
            },
            {
                "Sid": "ReadCluster",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster"],
                "Resource": cluster_arn,
            },
            {
                "Sid": "ReadInterruptions",
                "Effect": "Allow",
                "Action": [
                    "sqs:DeleteMessage",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                ],
                "Resource": queue_arn,
            },
        ],
    }


INTERRUPTION_EVENTS = (
    ("aws.health", "AWS Health Event"),
    ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
)
"""EventBridge (source, detail-type) pairs Karpenter reacts to."""


def interruption_queue_policy(queue_arn: str) -> PolicyDocument:
    """EventBridge may deliver to the interruption queue; TLS only."""
    return {
        "Version": _VERSION,
        "Statement": [
            {
                "Sid": "EventBridgeDelivers",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def tls_only_bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Deny every request to the bucket that does not arrive over TLS."""
    return {
        "Version": _VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def assume_role_policy(service: str) -> PolicyDocument:
    """Trust policy for an AWS service principal (EKS nodes, VPC flow logs)."""
    return {
        "Version": _VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def allowed_actions(document: PolicyDocument) -> list[str]:
    """Every action an identity policy allows, flattened (for checks and tests)."""
    actions: list[str] = []
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        value = statement.get("Action", [])
        actions.extend([value] if isinstance(value, str) else value)
    return actions
