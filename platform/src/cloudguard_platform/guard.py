"""The security rules a reviewer signs off, as pure functions.

Each check takes a Pulumi resource type token and its input properties (the
engine's camelCase names, as CrossGuard and the offline synth both see them)
and returns the violations it found, one message each. The CrossGuard pack in
`platform/policy/` wraps these for real `pulumi preview`/`up` runs; the tests
call them directly and on every resource of every synthesized stack.
"""

import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Props = Mapping[str, Any]
Check = Callable[[str, Props], list[str]]

DEPRECATED_TYPES = {
    "aws:s3/bucketV2:BucketV2": "aws.s3.Bucket",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:"
    "BucketServerSideEncryptionConfigurationV2": (
        "aws.s3.BucketServerSideEncryptionConfiguration"
    ),
    "aws:s3/bucketVersioningV2:BucketVersioningV2": "aws.s3.BucketVersioning",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2": (
        "aws.s3.BucketLifecycleConfiguration"
    ),
    "aws:s3/bucketAclV2:BucketAclV2": "aws.s3.BucketAcl (or no ACLs at all)",
}
_POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
)
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Rollout", "Pod")


@dataclass(frozen=True)
class Rule:
    """One named rule with its description and check."""

    name: str
    description: str
    check: Check


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = (_json(document) or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# --- S3 ---------------------------------------------------------------------


def check_no_deprecated_types(type_: str, props: Props) -> list[str]:
    """pulumi-aws v7 names only; the V2 aliases are deprecated."""
    if type_ in DEPRECATED_TYPES:
        return [
            f"{type_} is deprecated in pulumi-aws v7; use {DEPRECATED_TYPES[type_]}"
        ]
    return []


def check_public_access_block(type_: str, props: Props) -> list[str]:
    """All four public-access-block flags must be true."""
    if type_ != "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        return []
    flags = (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    )
    return [
        f"{flag} is {props.get(flag)!r}; set it to true"
        for flag in flags
        if props.get(flag) is not True
    ]


def check_bucket_encryption(type_: str, props: Props) -> list[str]:
    """Default encryption must be SSE-KMS with an explicit key."""
    if not type_.startswith("aws:s3/bucketServerSideEncryptionConfiguration"):
        return []
    rules = _as_list(props.get("rules"))
    if not rules:
        return ["no encryption rule; add one with sse_algorithm aws:kms"]
    problems = []
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") != "aws:kms":
            problems.append(
                f"sseAlgorithm is {default.get('sseAlgorithm')!r}; use aws:kms"
            )
        if not default.get("kmsMasterKeyId"):
            problems.append("kmsMasterKeyId is empty; use the stack's KMS key")
    return problems


def check_bucket_versioning(type_: str, props: Props) -> list[str]:
    """Versioning must be enabled."""
    if not type_.startswith("aws:s3/bucketVersioning"):
        return []
    status = (props.get("versioningConfiguration") or {}).get("status")
    return (
        [] if status == "Enabled" else [f"versioning status is {status!r}; use Enabled"]
    )


def check_bucket_tls_only(type_: str, props: Props) -> list[str]:
    """The bucket policy must deny requests without TLS."""
    if type_ != "aws:s3/bucketPolicy:BucketPolicy":
        return []
    for statement in _statements(props.get("policy")):
        condition = statement.get("Condition", {}).get("Bool", {})
        if (
            statement.get("Effect") == "Deny"
            and str(condition.get("aws:SecureTransport")).lower() == "false"
        ):
            return []
    return ["no Deny on aws:SecureTransport=false; add the TLS-only statement"]


# --- IAM --------------------------------------------------------------------


def check_iam_actions(type_: str, props: Props) -> list[str]:
    """No wildcard actions and no object deletion in any allow statement."""
    if type_ not in _POLICY_TYPES:
        return []
    problems = []
    for statement in _statements(props.get("policy")):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append("NotAction in an Allow statement grants everything else")
        for action in _as_list(statement.get("Action")):
            if "*" in action:
                problems.append(f"action {action!r} is a wildcard; list the actions")
            if action.lower().startswith("s3:deleteobject"):
                problems.append(f"action {action!r} deletes data; use lifecycle rules")
    return problems


def check_irsa_trust(type_: str, props: Props) -> list[str]:
    """Web-identity trust must pin both :sub and :aud with StringEquals."""
    if type_ != "aws:iam/role:Role":
        return []
    problems = []
    for statement in _statements(props.get("assumeRolePolicy")):
        if "sts:AssumeRoleWithWebIdentity" not in _as_list(statement.get("Action")):
            continue
        equals = statement.get("Condition", {}).get("StringEquals", {})
        subs = [k for k in equals if k.endswith(":sub")]
        auds = [k for k in equals if k.endswith(":aud")]
        if not subs or any("*" in str(equals[k]) for k in subs):
            problems.append("trust lacks an exact StringEquals on :sub")
        if not auds or any(equals[k] != "sts.amazonaws.com" for k in auds):
            problems.append("trust lacks StringEquals :aud = sts.amazonaws.com")
    return problems


# --- Compute and data -------------------------------------------------------


def check_cluster_endpoint(type_: str, props: Props) -> list[str]:
    """The API endpoint is private or limited to listed CIDRs; logging on."""
    if type_ == "eks:index:Cluster":
        public = props.get("endpointPublicAccess", True)
        cidrs = _as_list(props.get("publicAccessCidrs"))
        logs = _as_list(props.get("enabledClusterLogTypes"))
    elif type_ == "aws:eks/cluster:Cluster":
        vpc = props.get("vpcConfig") or {}
        public = vpc.get("endpointPublicAccess", True)
        cidrs = _as_list(vpc.get("publicAccessCidrs"))
        logs = _as_list(props.get("enabledClusterLogTypes"))
    else:
        return []
    problems = []
    if public and not cidrs:
        problems.append("public endpoint open to all; list CIDRs or make it private")
    for cidr in cidrs:
        if ipaddress.ip_network(cidr, strict=False).prefixlen == 0:
            problems.append(f"public endpoint allows {cidr}; list narrower ranges")
    for needed in ("api", "audit", "authenticator"):
        if needed not in logs:
            problems.append(f"control-plane log {needed!r} is off; enable it")
    return problems


def check_imdsv2(type_: str, props: Props) -> list[str]:
    """Launch templates require IMDSv2 tokens with a hop limit of 1."""
    if type_ != "aws:ec2/launchTemplate:LaunchTemplate":
        return []
    options = props.get("metadataOptions") or {}
    problems = []
    if options.get("httpTokens") != "required":
        problems.append(f"httpTokens is {options.get('httpTokens')!r}; use required")
    if options.get("httpPutResponseHopLimit") != 1:
        problems.append(
            f"hop limit is {options.get('httpPutResponseHopLimit')!r}; use 1 "
            "so pods cannot reach the node's credentials"
        )
    return problems


def check_database(type_: str, props: Props) -> list[str]:
    """RDS is private, encrypted, and its password never in config."""
    if type_ != "aws:rds/instance:Instance":
        return []
    problems = []
    if props.get("publiclyAccessible"):
        problems.append("publiclyAccessible is true; keep the database private")
    if props.get("storageEncrypted") is not True:
        problems.append("storageEncrypted is not true; encrypt with the stack key")
    if props.get("password") or props.get("passwordWo"):
        problems.append("a password is set in config; use manage_master_user_password")
    if props.get("manageMasterUserPassword") is not True:
        problems.append(
            "manageMasterUserPassword is off; let RDS keep it in Secrets Manager"
        )
    return problems


def check_helm_pinned(type_: str, props: Props) -> list[str]:
    """Every Helm release names an exact chart version."""
    if type_ != "kubernetes:helm.sh/v3:Release":
        return []
    version = str(props.get("version") or "")
    if not version or any(ch in version for ch in "^~*x><"):
        return [f"chart {props.get('chart')!r} version {version!r} is not pinned"]
    return []


# --- Kubernetes workloads ---------------------------------------------------


def pod_specs(manifest: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, pod spec) for every pod template in a manifest."""
    kind = manifest.get("kind")
    spec = manifest.get("spec") or {}
    if kind == "Pod":
        yield "spec", spec
    elif kind in _WORKLOAD_KINDS:
        yield "spec.template.spec", (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield "spec.jobTemplate", (job.get("template") or {}).get("spec") or {}


def containers(manifest: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, container) for every container, init container and Argo step."""
    for where, pod in pod_specs(manifest):
        for key in ("initContainers", "containers"):
            for container in pod.get(key) or []:
                yield f"{where}.{key}[{container.get('name')}]", container
    for template in (manifest.get("spec") or {}).get("templates") or []:
        for key in ("container", "script"):
            if key in template:
                yield f"templates[{template.get('name')}].{key}", template[key]


def check_pod_security(manifest: Mapping[str, Any]) -> list[str]:
    """Non-root, read-only root, no capabilities, sized, probed, pinned."""
    problems = []
    for where, pod in pod_specs(manifest):
        if pod.get("serviceAccountName") in (None, "", "default"):
            problems.append(f"{where}: runs as the default service account")
    for where, container in containers(manifest):
        problems += [f"{where}: {p}" for p in _container_problems(manifest, container)]
    return problems


def _container_problems(
    manifest: Mapping[str, Any], container: Mapping[str, Any]
) -> list[str]:
    problems = []
    image = str(container.get("image", ""))
    tag = image.rsplit("/", 1)[-1]
    if ":" not in tag or tag.endswith(":latest"):
        problems.append(f"image {image!r} is not pinned to a version")
    security = container.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        problems.append("capabilities are not dropped (drop: [ALL])")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        for unit in ("cpu", "memory"):
            if unit not in (resources.get(part) or {}):
                problems.append(f"resources.{part}.{unit} is missing")
    long_running = manifest.get("kind") in ("Deployment", "StatefulSet", "Rollout")
    is_init = container.get("name") in _init_names(manifest)
    if long_running and not is_init:
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in container:
                problems.append(f"{probe} is missing")
    return problems


def _init_names(manifest: Mapping[str, Any]) -> set[str]:
    return {
        c.get("name", "")
        for _, pod in pod_specs(manifest)
        for c in pod.get("initContainers") or []
    }


def check_kubernetes_object(type_: str, props: Props) -> list[str]:
    """Pod rules for Kubernetes resources the program applies directly."""
    if not type_.startswith("kubernetes:") or type_.startswith("kubernetes:helm.sh"):
        return []
    return check_pod_security(props)


RULES: tuple[Rule, ...] = (
    Rule(
        "no-deprecated-aws-types",
        "pulumi-aws v7 resource names",
        check_no_deprecated_types,
    ),
    Rule("s3-public-access-block", "all four flags on", check_public_access_block),
    Rule("s3-sse-kms", "SSE-KMS default encryption", check_bucket_encryption),
    Rule("s3-versioning", "versioning enabled", check_bucket_versioning),
    Rule("s3-tls-only", "deny non-TLS access", check_bucket_tls_only),
    Rule("iam-least-privilege", "no wildcard or delete actions", check_iam_actions),
    Rule("irsa-trust-pinned", "StringEquals on :sub and :aud", check_irsa_trust),
    Rule(
        "eks-endpoint-restricted", "private or CIDR-limited API", check_cluster_endpoint
    ),
    Rule("imdsv2-hop-limit-1", "IMDSv2 required, hop limit 1", check_imdsv2),
    Rule(
        "rds-private-encrypted", "private, encrypted, managed password", check_database
    ),
    Rule("helm-chart-pinned", "exact chart versions", check_helm_pinned),
    Rule(
        "k8s-pod-security",
        "non-root, read-only, sized, pinned",
        check_kubernetes_object,
    ),
)


def violations(type_: str, props: Props) -> list[str]:
    """Every rule's findings for one resource, prefixed with the rule name."""
    return [f"{rule.name}: {p}" for rule in RULES for p in rule.check(type_, props)]
