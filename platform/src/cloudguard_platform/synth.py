"""Offline synth: run the program under Pulumi mocks and write what it declares.

No Pulumi CLI, provider plugin or cloud is involved. The mocks echo each
resource's inputs back as its state and invent deterministic IDs and ARNs
(account 123456789012), so the output is a faithful list of what `pulumi up`
would ask the providers for, readable by a reviewer without cloud access.

pulumi-eks's `Cluster` is a multi-language component: under mocks it arrives
as a single resource (`eks:index:Cluster`) whose children (the control plane,
OIDC provider, security groups) are not declared in this process, so the mocks
return its outputs (kubeconfig, OIDC issuer and provider ARN) themselves.
"""

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from cloudguard_platform import manifests
from cloudguard_platform.errors import ConfigError, PlatformError
from cloudguard_platform.settings import STACKS, Settings, parse_settings

_logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
PROJECT = "cloudguard"
REDACTED = "[secret]"
_SECRET_PLACEHOLDER = "synth-placeholder-not-a-key"  # noqa: S105
_CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
_K8S_SKIP = ("kubernetes:helm.sh/v3:Release",)


@dataclass(frozen=True)
class MockedResource:
    """One resource the program declared, as the engine would have seen it."""

    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False


@dataclass
class SynthResult:
    """Everything one mocked run declared."""

    stack: str
    settings: Settings
    resources: list[MockedResource] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[MockedResource]:
        """Resources of one Pulumi type token, e.g. `aws:s3/bucket:Bucket`."""
        return [r for r in self.resources if r.type == type_token]

    def named(self, type_token: str, name: str) -> MockedResource:
        """The one resource of a type with a logical name."""
        for resource in self.of_type(type_token):
            if resource.name == name:
                return resource
        raise PlatformError(f"no {type_token} named {name!r} in the {self.stack} synth")

    def kubernetes_manifests(self) -> list[dict[str, Any]]:
        """Every Kubernetes object the program applies, as a manifest dict."""
        objects = []
        for resource in self.resources:
            if (
                not resource.type.startswith("kubernetes:")
                or resource.type in _K8S_SKIP
            ):
                continue
            body = dict(resource.inputs)
            manifest = {
                "apiVersion": body.pop("apiVersion"),
                "kind": body.pop("kind"),
                "metadata": body.pop("metadata"),
            }
            manifest.update(sorted(body.items()))
            if manifest["kind"] == "Secret":
                manifest = _redact_secret(manifest)
            objects.append(manifest)
        return objects


class PlatformMocks(pulumi.runtime.Mocks):
    """Echo inputs as state; invent the outputs real providers would compute."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.resources: list[MockedResource] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        recorded = _plain(inputs)
        self.resources.append(MockedResource(args.typ, args.name, recorded))
        state = inputs | _computed(args.typ, args.name, recorded, self.region)
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == _CALLER_IDENTITY:
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/synth",
                "userId": "SYNTH",
                "id": ACCOUNT_ID,
            }, []
        raise PlatformError(f"the offline synth has no mock for invoke {args.token}")


class _OptionsMonitor(MockMonitor):
    """MockMonitor that also remembers each resource's protect options."""

    def __init__(self, mocks: PlatformMocks) -> None:
        super().__init__(mocks)
        self.options: dict[tuple[str, str], tuple[bool, bool]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC name
        key = (request.type, request.name)
        self.options[key] = (bool(request.protect), bool(request.retainOnDelete))
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def _computed(
    typ: str, name: str, inputs: Mapping[str, Any], region: str
) -> dict[str, Any]:
    """Outputs the cloud would compute, deterministic for a given name."""
    service = typ.split(":")[1].split("/")[0] if typ.count(":") >= 2 else "mock"
    state: dict[str, Any] = {"arn": f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{name}"}
    if typ == "aws:s3/bucket:Bucket":
        state |= {"arn": f"arn:aws:s3:::{inputs['bucket']}", "bucket": inputs["bucket"]}
    elif typ == "aws:kms/key:Key":
        state |= {"keyId": f"{name}-key-id"}
    elif typ == "aws:iam/role:Role":
        role = inputs.get("name") or name
        state |= {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "name": role}
    elif typ == "aws:sqs/queue:Queue":
        queue = inputs.get("name") or name
        state |= {
            "arn": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue}",
            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{queue}",
        }
    elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
        state |= {"latestVersion": 1}
    elif typ == "aws:rds/instance:Instance":
        host = f"{inputs['identifier']}.abcdefghijkl.{region}.rds.amazonaws.com"
        state |= {
            "address": host,
            "endpoint": f"{host}:5432",
            "masterUserSecrets": [
                {
                    "secretArn": (
                        f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:"
                        f"rds!db-{inputs['identifier']}"
                    ),
                    "kmsKeyId": "mock",
                    "secretStatus": "active",
                }
            ],
        }
    elif typ == "eks:index:Cluster":
        issuer = f"oidc.eks.{region}.amazonaws.com/id/SYNTH{len(name):04d}"
        state |= {
            "kubeconfigJson": json.dumps({"apiVersion": "v1", "kind": "Config"}),
            "oidcIssuer": issuer,
            "oidcProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer}",
            "clusterSecurityGroupId": "sg-synth",
        }
    return state


def _plain(value: Any) -> Any:
    """Inputs as a reviewer reads them: secrets redacted, whole floats as ints."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return REDACTED
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redact_secret(manifest: dict[str, Any]) -> dict[str, Any]:
    redacted = dict(manifest)
    for key in ("data", "stringData"):
        value = redacted.get(key)
        if isinstance(value, dict):
            redacted[key] = dict.fromkeys(value, REDACTED)
        elif value is not None:
            # The engine marked the whole map secret: even its keys stay hidden.
            redacted[key] = {}
            meta = dict(redacted.get("metadata") or {})
            meta["annotations"] = {"cloudguard.io/synth": f"{key} redacted"}
            redacted["metadata"] = meta
    return redacted


def load_stack_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """Read `stacks/Pulumi.<stack>.yaml` into the engine's flat config map.

    Object values become JSON (as the engine passes them); encrypted values
    cannot be decrypted offline and become a placeholder marked secret.
    """
    if not path.is_file():
        raise ConfigError(
            "stack", f"{path} does not exist", "pick dev, staging or prod"
        )
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = _SECRET_PLACEHOLDER
            secrets.append(key)
        elif isinstance(value, str):
            config[key] = value
        else:
            config[key] = json.dumps(value)
    return config, secrets


def settings_for(stack: str, stacks_dir: Path) -> Settings:
    """Validated settings of a stack, straight from its YAML file."""
    config, _ = load_stack_config(stacks_dir / f"Pulumi.{stack}.yaml")
    # Values stay as the engine passes them (objects as JSON text); the
    # settings reader decodes and type-checks each one.
    raw = {
        key.split(":", 1)[1]: value
        for key, value in config.items()
        if key.startswith("cloudguard:")
    }
    return parse_settings(stack, raw, config.get("aws:region", ""))


def run_mocked(
    stack: str, stacks_dir: Path, pipeline_dir: Path | None = None
) -> SynthResult:
    """Run `program.run()` for a stack under mocks; return what it declared."""
    from cloudguard_platform import program

    if stack not in STACKS:
        raise ConfigError("stack", f"unknown stack {stack!r}", f"use one of {STACKS}")
    settings = settings_for(stack, stacks_dir)
    config, secrets = load_stack_config(stacks_dir / f"Pulumi.{stack}.yaml")
    secret_key = f"cloudguard:{program.API_KEYS_CONFIG}"
    if secret_key not in config:
        config[secret_key] = _SECRET_PLACEHOLDER
        secrets.append(secret_key)

    mocks = PlatformMocks(settings.region)
    monitor = _OptionsMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor
    )
    pulumi.runtime.set_all_config(config, secrets)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(lambda: program.run(pipeline_dir)))

    resources = [
        replace(r, protect=flags[0], retain_on_delete=flags[1])
        for r in mocks.resources
        for flags in [monitor.options.get((r.type, r.name), (False, False))]
    ]
    _logger.info("synth_run stack=%s resources=%d", stack, len(resources))
    return SynthResult(stack, settings, resources)


def inventory(result: SynthResult) -> dict[str, Any]:
    """JSON-ready inventory: type, name and inputs of every resource."""
    resources = [
        {
            "type": r.type,
            "name": r.name,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "inputs": _redact_inputs(r),
        }
        for r in result.resources
    ]
    counts: dict[str, int] = {}
    for r in result.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    return {
        "project": PROJECT,
        "stack": result.stack,
        "region": result.settings.region,
        "resourceCount": len(resources),
        "countsByType": dict(sorted(counts.items())),
        "resources": resources,
    }


def _redact_inputs(resource: MockedResource) -> dict[str, Any]:
    if resource.type == "kubernetes:core/v1:Secret":
        return _redact_secret(resource.inputs)
    if resource.type == "pulumi:providers:kubernetes":
        return {
            k: REDACTED if k == "kubeconfig" else v for k, v in resource.inputs.items()
        }
    return resource.inputs


def _file_name(manifest: Mapping[str, Any]) -> str:
    meta = manifest.get("metadata", {})
    parts = [manifest["kind"], meta.get("namespace", "cluster"), meta["name"]]
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join(parts).lower()) + ".yaml"


class _ManifestDumper(yaml.SafeDumper):  # type: ignore[misc]
    """SafeDumper with its own string style, whatever others register globally."""

    def ignore_aliases(self, data: Any) -> bool:
        # Manifests are read by people and by kubectl: no &anchors/*aliases.
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def write_yaml(path: Path, documents: list[dict[str, Any]]) -> None:
    """Write manifests as a multi-document YAML file (keys in given order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump_all(
        documents, Dumper=_ManifestDumper, sort_keys=False, default_flow_style=False
    )
    path.write_text(text, encoding="utf-8")


def write_gitops_tree(settings: Settings, root: Path) -> list[Path]:
    """Write `deploy/apps/<stack>/...` (the Argo CD-synced workloads) under root."""
    written = []
    for relative, documents in manifests.gitops_tree(settings).items():
        path = root / "deploy" / "apps" / settings.stack / relative
        write_yaml(path, documents)
        written.append(path)
    return written


def write_synth(result: SynthResult, out_dir: Path) -> dict[str, int]:
    """Write inventory.json and the cluster, gitops, monitoring and helm YAML."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "inventory.json").write_text(
        json.dumps(inventory(result), indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )
    cluster = result.kubernetes_manifests()
    for manifest in cluster:
        write_yaml(out_dir / "cluster" / _file_name(manifest), [manifest])
    gitops = write_gitops_tree(result.settings, out_dir / "gitops")
    write_yaml(
        out_dir / "monitoring" / "prometheus-scrape-config.yaml",
        [{"scrape_configs": [manifests.scrape_config()]}],
    )
    releases = result.of_type("kubernetes:helm.sh/v3:Release")
    for release in releases:
        write_yaml(out_dir / "helm" / f"{release.name}.yaml", [release.inputs])

    counts = {
        "resources": len(result.resources),
        "cluster_manifests": len(cluster),
        "gitops_files": len(gitops),
        "helm_releases": len(releases),
    }
    _logger.info("synth_written stack=%s out=%s %s", result.stack, out_dir, counts)
    return counts
