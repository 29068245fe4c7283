"""Validate rendered manifests against Kubernetes and CRD schemas, offline.

- core kinds: `kubernetes-validate` (bundled Kubernetes OpenAPI schemas, strict)
- Argo Workflows kinds: Hera's generated models
- Argo CD, Argo Rollouts and Karpenter kinds: our JSON schemas in `schemas/`
- every pod template: the `guard.check_pod_security` rules
"""

import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

import jsonschema
import yaml

from cloudguard_platform.guard import check_pod_security

KUBERNETES_VERSION = "1.33"
_SCHEMAS = Path(__file__).parent / "schemas"
_SCHEMA_FILES = {
    ("argoproj.io/v1alpha1", "Application"): "argocd-application.json",
    ("argoproj.io/v1alpha1", "Rollout"): "argo-rollouts.json",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "argo-rollouts.json",
    ("karpenter.sh/v1", "NodePool"): "karpenter.json",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "karpenter.json",
}
_WORKFLOW_KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow")


@cache
def _schema(file_name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (_SCHEMAS / file_name).read_text(encoding="utf-8")
    )
    return loaded


def schema_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Schema violations of one manifest; an unknown kind is itself an error."""
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    if key in _SCHEMA_FILES:
        validator = jsonschema.Draft202012Validator(_schema(_SCHEMA_FILES[key]))
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(manifest)
        ]
    if key[0] == "argoproj.io/v1alpha1" and key[1] in _WORKFLOW_KINDS:
        return _workflow_errors(manifest)
    if (
        "/" not in key[0]
        or key[0].split("/")[0].endswith(".k8s.io")
        or key[0].startswith(("apps/", "autoscaling/", "policy/", "batch/"))
    ):
        return _kubernetes_errors(manifest)
    return [f"no schema for {key[0]} {key[1]}; add one under schemas/"]


def _kubernetes_errors(manifest: Mapping[str, Any]) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(dict(manifest), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(map(str, error.path))
        return [f"{path or '<root>'}: {error.message}"]
    return []


def _workflow_errors(manifest: Mapping[str, Any]) -> list[str]:
    import pydantic
    from hera.workflows import models

    model = getattr(models, manifest["kind"])
    try:
        model.model_validate(dict(manifest))
    except pydantic.ValidationError as error:
        return [f"{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    return []


def scrape_config_errors(document: Mapping[str, Any]) -> list[str]:
    """Schema violations of a Prometheus `scrape_configs` document."""
    validator = jsonschema.Draft202012Validator(_schema("prometheus-scrape.json"))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Schema errors plus pod-security findings, each naming the object."""
    meta = manifest.get("metadata") or {}
    label = f"{manifest.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"
    return [
        f"{label}: {p}" for p in schema_errors(manifest) + check_pod_security(manifest)
    ]


def checkov_view(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as checkov can read it.

    checkov's Kubernetes checks know Deployments but not Argo Rollouts; a
    Rollout's pod template is a Deployment's, so it is scanned as one.
    """
    if manifest.get("kind") != "Rollout":
        return dict(manifest)
    spec = {k: v for k, v in manifest["spec"].items() if k != "strategy"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": manifest["metadata"],
        "spec": spec,
    }


def load_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every YAML document in the given files (empty documents skipped)."""
    documents = []
    for path in paths:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                documents.append(document)
    return documents


CHECKOV_VERSION = "3.3.30"
CHECKOV_FRAMEWORKS = ("kubernetes", "argo_workflows")


def write_checkov_input(manifests: Iterable[Mapping[str, Any]], directory: Path) -> int:
    """Write manifests (Rollouts as Deployments) one per file for checkov."""
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, manifest in enumerate(manifests, start=1):
        path = directory / f"{count:03d}-{str(manifest.get('kind')).lower()}.yaml"
        path.write_text(
            yaml.safe_dump(checkov_view(manifest), sort_keys=False), "utf-8"
        )
    return count


CHECKOV_OFFLINE_ENV: Final = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
    "LOG_LEVEL": "WARNING",
}
"""Environment that keeps checkov off the network: no policy mapping download
and no check for a newer release on the package index."""


def checkov_command(directory: Path, skip_checks: Iterable[str]) -> list[str]:
    """The checkov command line: pinned version, offline (`--skip-download`)."""
    command = [
        "uv",
        "tool",
        "run",
        "--from",
        f"checkov=={CHECKOV_VERSION}",
        "checkov",
        "--directory",
        str(directory),
        "--framework",
        *CHECKOV_FRAMEWORKS,
        "--skip-download",
        "--compact",
        "--quiet",
        "--output",
        "json",
    ]
    skips = sorted(skip_checks)
    if skips:
        command += ["--skip-check", ",".join(skips)]
    return command


def checkov_failures(report: Any) -> list[str]:
    """`CHECK_ID resource` for every failed check in checkov's JSON report."""
    reports = report if isinstance(report, list) else [report]
    return [
        f"{failed['check_id']} {failed['resource']}"
        for entry in reports
        for failed in entry.get("results", {}).get("failed_checks", [])
    ]


def load_exceptions(path: Path) -> dict[str, str]:
    """Accepted checkov findings: check id -> reason (reasons are required)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    accepted = {}
    for entry in document.get("exceptions", []):
        reason = str(entry.get("reason", "")).strip()
        if len(reason) < 20:
            raise ValueError(
                f"{path}: exception {entry.get('check')} needs a real reason"
            )
        accepted[str(entry["check"])] = reason
    return accepted
