"""IAM and bucket policy documents, called directly."""

import pytest
from cloudguard_platform import PlatformError, policies

ISSUER = "https://oidc.eks.eu-central-1.amazonaws.com/id/ABC123"
PROVIDER = (
    "arn:aws:iam::123456789012:oidc-provider/"
    "oidc.eks.eu-central-1.amazonaws.com/id/ABC123"
)
RAW, ART, INF = (f"arn:aws:s3:::cg-{p}" for p in ("raw", "art", "inf"))
KEY = "arn:aws:kms:eu-central-1:123456789012:key/k"
SECRET = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:db"


def test_trust_policy_pins_subject_and_audience_with_string_equals() -> None:
    document = policies.irsa_trust_policy(ISSUER, PROVIDER, "cloudguard", "trainer")

    (statement,) = document["Statement"]
    assert statement["Principal"] == {"Federated": PROVIDER}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "oidc.eks.eu-central-1.amazonaws.com/id/ABC123:sub": (
                "system:serviceaccount:cloudguard:trainer"
            ),
            "oidc.eks.eu-central-1.amazonaws.com/id/ABC123:aud": "sts.amazonaws.com",
        }
    }


def test_trust_policy_accepts_the_issuer_without_scheme() -> None:
    with_scheme = policies.irsa_trust_policy(ISSUER, PROVIDER, "ns", "sa")
    without = policies.irsa_trust_policy(
        ISSUER.removeprefix("https://"), PROVIDER, "ns", "sa"
    )

    assert with_scheme == without


@pytest.mark.parametrize(
    ("provider", "namespace", "account"),
    [
        ("arn:aws:iam::123456789012:role/x", "ns", "sa"),
        (PROVIDER, "", "sa"),
        (PROVIDER, "ns", ""),
    ],
)
def test_trust_policy_refuses_a_wrong_provider_or_a_blank_subject(
    provider: str, namespace: str, account: str
) -> None:
    with pytest.raises(PlatformError):
        policies.irsa_trust_policy(ISSUER, provider, namespace, account)


def _grants(document: policies.PolicyDocument) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            actions = statement["Action"]
            grants.setdefault(resource, set()).update(
                [actions] if isinstance(actions, str) else actions
            )
    return grants


def test_trainer_reads_raw_data_and_writes_artifacts_only() -> None:
    grants = _grants(policies.trainer_policy(RAW, ART, KEY))

    assert "s3:PutObject" not in grants[f"{RAW}/*"]
    assert "s3:GetObject" in grants[f"{RAW}/*"]
    assert "s3:PutObject" in grants[f"{ART}/*"]
    assert not any(INF in resource for resource in grants)


def test_serving_reads_artifacts_and_writes_inference_logs_only() -> None:
    grants = _grants(policies.serving_policy(ART, INF, KEY))

    assert grants[f"{ART}/*"] == {"s3:GetObject", "s3:GetObjectVersion"}
    assert grants[f"{INF}/*"] == {"s3:PutObject"}
    assert not any(RAW in resource for resource in grants)


def test_mlflow_may_read_only_its_own_database_secret() -> None:
    grants = _grants(policies.mlflow_policy(ART, KEY, SECRET))

    assert grants[SECRET] == {"secretsmanager:GetSecretValue"}


@pytest.mark.parametrize(
    "document",
    [
        policies.trainer_policy(RAW, ART, KEY),
        policies.serving_policy(ART, INF, KEY),
        policies.mlflow_policy(ART, KEY, SECRET),
        policies.workflow_executor_policy(RAW, ART, KEY),
        policies.karpenter_policy(
            "c", "arn:aws:eks:r:1:cluster/c", "arn:role", "r", "arn:aws:sqs:r:1:q"
        ),
    ],
)
def test_no_role_gets_wildcard_or_delete_actions(
    document: policies.PolicyDocument,
) -> None:
    actions = policies.allowed_actions(document)

    assert actions
    assert not [a for a in actions if "*" in a]
    assert not [a for a in actions if a.startswith("s3:Delete")]


def test_bucket_policy_denies_every_request_without_tls() -> None:
    (statement,) = policies.tls_only_bucket_policy(RAW)["Statement"]

    assert statement["Effect"] == "Deny"
    assert statement["Resource"] == [RAW, f"{RAW}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
