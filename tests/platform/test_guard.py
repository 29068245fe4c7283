"""The security rules behind the CrossGuard pack, on good and bad inputs."""

import json
from typing import Any

import pytest
from cloudguard_platform import guard
from cloudguard_platform.crossguard import PACK_NAME, build_policies
from pulumi_policy import ResourceValidationArgs

GOOD_CONTAINER = {
    "name": "app",
    "image": "ghcr.io/cloudguard/serving:0.1.0",
    "securityContext": {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
    "resources": {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
    "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
}


def _deployment(**container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "template": {
                "spec": {
                    "serviceAccountName": "x",
                    "containers": [GOOD_CONTAINER | container],
                }
            }
        },
    }


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


COMPLIANT = [
    (
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        dict.fromkeys(
            [
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            ],
            True,
        ),
    ),
    (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        {
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": "arn:key",
                    }
                }
            ]
        },
    ),
    (
        "aws:s3/bucketVersioning:BucketVersioning",
        {"versioningConfiguration": {"status": "Enabled"}},
    ),
    (
        "aws:iam/rolePolicy:RolePolicy",
        {
            "policy": _policy(
                [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "a"}]
            )
        },
    ),
    (
        "aws:ec2/launchTemplate:LaunchTemplate",
        {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1}},
    ),
    (
        "eks:index:Cluster",
        {
            "endpointPublicAccess": False,
            "enabledClusterLogTypes": ["api", "audit", "authenticator"],
        },
    ),
    ("kubernetes:helm.sh/v3:Release", {"chart": "argo-cd", "version": "8.5.0"}),
    ("kubernetes:apps/v1:Deployment", _deployment()),
]

NON_COMPLIANT = [
    ("aws:s3/bucketV2:BucketV2", {}, "deprecated"),
    (
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True},
        "restrictPublicBuckets",
    ),
    (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        "aws:kms",
    ),
    (
        "aws:s3/bucketVersioning:BucketVersioning",
        {"versioningConfiguration": {"status": "Suspended"}},
        "Enabled",
    ),
    ("aws:s3/bucketPolicy:BucketPolicy", {"policy": _policy([])}, "SecureTransport"),
    (
        "aws:iam/rolePolicy:RolePolicy",
        {"policy": _policy([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])},
        "wildcard",
    ),
    (
        "aws:iam/rolePolicy:RolePolicy",
        {
            "policy": _policy(
                [{"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": "a"}]
            )
        },
        "deletes data",
    ),
    (
        "aws:iam/role:Role",
        {
            "assumeRolePolicy": _policy(
                [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringLike": {"issuer:sub": "system:serviceaccount:*"}
                        },
                    }
                ]
            )
        },
        ":sub",
    ),
    (
        "eks:index:Cluster",
        {
            "endpointPublicAccess": True,
            "enabledClusterLogTypes": ["api", "audit", "authenticator"],
        },
        "open to all",
    ),
    (
        "aws:eks/cluster:Cluster",
        {
            "vpcConfig": {
                "endpointPublicAccess": True,
                "publicAccessCidrs": ["0.0.0.0/0"],
            }
        },
        "0.0.0.0/0",
    ),
    (
        "aws:ec2/launchTemplate:LaunchTemplate",
        {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2}},
        "hop limit",
    ),
    (
        "aws:rds/instance:Instance",
        {"publiclyAccessible": False, "storageEncrypted": True, "password": "hunter2"},
        "password",
    ),
    (
        "kubernetes:helm.sh/v3:Release",
        {"chart": "argo-cd", "version": "^8.0.0"},
        "not pinned",
    ),
    ("kubernetes:apps/v1:Deployment", _deployment(image="nginx:latest"), "not pinned"),
    ("kubernetes:apps/v1:Deployment", _deployment(image="nginx"), "not pinned"),
    (
        "kubernetes:apps/v1:Deployment",
        _deployment(securityContext={"runAsNonRoot": True}),
        "readOnlyRootFilesystem",
    ),
    ("kubernetes:apps/v1:Deployment", _deployment(resources={}), "limits.memory"),
]


@pytest.mark.parametrize(("type_", "props"), COMPLIANT)
def test_compliant_resource_has_no_violations(
    type_: str, props: dict[str, Any]
) -> None:
    assert guard.violations(type_, props) == []


@pytest.mark.parametrize(("type_", "props", "expected"), NON_COMPLIANT)
def test_non_compliant_resource_is_reported(
    type_: str, props: dict[str, Any], expected: str
) -> None:
    found = guard.violations(type_, props)

    assert any(expected in problem for problem in found), found


def test_long_running_container_without_probes_is_reported() -> None:
    manifest = _deployment()
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    del container["livenessProbe"], container["readinessProbe"]

    found = guard.check_pod_security(manifest)

    assert any("livenessProbe" in p for p in found)
    assert any("readinessProbe" in p for p in found)


def test_pod_on_the_default_service_account_is_reported() -> None:
    manifest = _deployment()
    manifest["spec"]["template"]["spec"]["serviceAccountName"] = "default"

    assert any(
        "default service account" in p for p in guard.check_pod_security(manifest)
    )


def test_crossguard_policies_report_through_the_pack_callback() -> None:
    policies = {p.name: p for p in build_policies()}
    reported: list[str] = []
    args = ResourceValidationArgs(
        resource_type="aws:ec2/launchTemplate:LaunchTemplate",
        props={
            "metadataOptions": {"httpTokens": "optional", "httpPutResponseHopLimit": 1}
        },
        urn="urn:pulumi:dev::cloudguard::aws:ec2/launchTemplate:LaunchTemplate::nodes",
        name="nodes",
        opts=None,  # type: ignore[arg-type]
        provider=None,
    )

    policies["imdsv2-hop-limit-1"].validate(
        args, lambda message, urn=None: reported.append(message)
    )

    assert PACK_NAME == "cloudguard-security"
    assert set(policies) == {rule.name for rule in guard.RULES}
    assert reported == ["nodes: httpTokens is 'optional'; use required"]
