"""Apply manifest dicts with pulumi_kubernetes, and install pinned Helm charts.

Manifests are built as plain dicts by `manifests` and `workflow_specs`; this
module turns each into the matching typed resource (or a `CustomResource` for
CRDs), so the offline synth can read every object back from the mocks.
"""

import re
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from cloudguard_platform.constants import Chart

_TYPED = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
}


def apply(
    name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions
) -> pulumi.CustomResource:
    """Create the Pulumi resource for one manifest dict."""
    key = (manifest["apiVersion"], manifest["kind"])
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    if key in _TYPED:
        typed: pulumi.CustomResource = _TYPED[key](name, opts=opts, **_snake(body))
        return typed
    return k8s.apiextensions.CustomResource(
        name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest.get("spec"),
        opts=opts,
    )


def _snake(body: dict[str, Any]) -> dict[str, Any]:
    # Top-level field names only; nested dicts pass through as camelCase
    # dicts, which pulumi_kubernetes accepts for its input types.
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): v for k, v in body.items()}


def helm_release(
    name: str,
    chart: Chart,
    namespace: str,
    values: dict[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A Helm release of a pinned chart; failed installs roll back."""
    oci = chart.repo.startswith("oci://")
    return k8s.helm.v3.Release(
        name,
        k8s.helm.v3.ReleaseArgs(
            name=chart.name,
            chart=f"{chart.repo}/{chart.name}" if oci else chart.name,
            version=chart.version,
            repository_opts=None
            if oci
            else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=namespace,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            values=values,
        ),
        opts=opts,
    )
