"""Per-stack settings: read once from Pulumi config, validated with clear errors.

`dev`, `staging` and `prod` run the same program; everything that differs lives
in `stacks/Pulumi.<stack>.yaml` under the `cloudguard:` namespace and is parsed
here into one typed, frozen object. `parse_settings` is pure so tests feed it
plain dicts; `load_settings` reads the live Pulumi config.
"""

import ipaddress
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudguard_platform.errors import ConfigError

_logger = logging.getLogger(__name__)

STACKS = ("dev", "staging", "prod")
_K8S_VERSION = re.compile(r"^1\.(2[89]|3[0-9])$")
_IMAGE = re.compile(r"^[a-z0-9.\-/:]+:[A-Za-z0-9_.\-]+(@sha256:[a-f0-9]{64})?$")
_CRON = re.compile(r"^(\S+\s+){4}\S+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9\-]*\.[a-z0-9]+$")


@dataclass(frozen=True)
class NodeGroupSettings:
    """The always-on managed node group (system pods, Karpenter itself)."""

    instance_types: tuple[str, ...]
    min_size: int
    desired_size: int
    max_size: int
    disk_gib: int


@dataclass(frozen=True)
class NodeAutoscalingSettings:
    """Karpenter NodePool limits: the most the stack may ever add."""

    cpu_limit: int
    memory_limit_gib: int
    instance_families: tuple[str, ...]
    capacity_types: tuple[str, ...]


@dataclass(frozen=True)
class ServingSettings:
    """Replica bounds and autoscaling targets for the serving Rollout."""

    min_replicas: int
    max_replicas: int
    target_cpu_percent: int
    target_requests_per_second: int
    shadow_share: float


@dataclass(frozen=True)
class DatabaseSettings:
    """The MLflow PostgreSQL backend on RDS."""

    instance_class: str
    allocated_storage_gib: int
    multi_az: bool
    backup_retention_days: int
    engine_version: str


@dataclass(frozen=True)
class PipelineSettings:
    """When the retraining CronWorkflow runs."""

    schedule: str
    timezone: str
    starting_deadline_seconds: int


@dataclass(frozen=True)
class Settings:
    """Everything one stack needs; built by `parse_settings`."""

    stack: str
    region: str
    kubernetes_version: str
    vpc_cidr: str
    availability_zones: tuple[str, ...]
    api_public_cidrs: tuple[str, ...]
    node_group: NodeGroupSettings
    node_autoscaling: NodeAutoscalingSettings
    serving: ServingSettings
    database: DatabaseSettings
    pipeline: PipelineSettings
    serving_image: str
    trainer_image: str
    """Pipeline steps and the MLflow server (it ships mlflow, boto3, psycopg2)."""
    inference_log_retention_days: int
    protect_data: bool
    gitops_repo_url: str
    gitops_revision: str

    def bucket_name(self, purpose: str) -> str:
        """The S3 bucket name for a purpose in this stack."""
        return f"cloudguard-{self.stack}-{purpose}"


def parse_settings(stack: str, raw: Mapping[str, Any], region: str) -> Settings:
    """Validate raw `cloudguard:` config values (keys without the namespace)."""
    if stack not in STACKS:
        raise ConfigError(
            "stack", f"unknown stack {stack!r}", f"use one of {', '.join(STACKS)}"
        )
    if not region:
        raise ConfigError(
            "aws:region", "not set", "run `pulumi config set aws:region us-east-1`"
        )
    r = _Reader(raw)

    settings = Settings(
        stack=stack,
        region=region,
        kubernetes_version=r.matching("kubernetesVersion", _K8S_VERSION, "e.g. 1.33"),
        vpc_cidr=_cidr(r.text("vpcCidr"), "vpcCidr", private=True),
        availability_zones=_zones(r.strings("availabilityZones"), region),
        api_public_cidrs=tuple(
            _cidr(c, "apiPublicCidrs", private=False)
            for c in r.strings("apiPublicCidrs", allow_empty=True)
        ),
        node_group=_node_group(r.section("nodeGroup")),
        node_autoscaling=_node_autoscaling(r.section("nodeAutoscaling")),
        serving=_serving(r.section("serving")),
        database=_database(r.section("database")),
        pipeline=_pipeline(r.section("pipeline")),
        serving_image=r.matching("servingImage", _IMAGE, "registry/repo:tag"),
        trainer_image=r.matching("trainerImage", _IMAGE, "registry/repo:tag"),
        inference_log_retention_days=r.integer(
            "inferenceLogRetentionDays", low=7, high=3650
        ),
        protect_data=r.boolean("protectData"),
        gitops_repo_url=r.matching(
            "gitopsRepoUrl", re.compile(r"^(https://|git@)\S+$"), "an https URL"
        ),
        gitops_revision=r.text("gitopsRevision"),
    )
    for image in (settings.serving_image, settings.trainer_image):
        if image.endswith(":latest"):
            raise ConfigError("image", f"{image!r} uses latest", "pin a version tag")
    if stack == "prod" and not settings.protect_data:
        raise ConfigError("protectData", "false in prod", "set it to true")

    _logger.info("settings_loaded stack=%s region=%s", stack, region)
    return settings


def load_settings() -> Settings:
    """Read and validate the live Pulumi config of the current stack."""
    import pulumi

    config = pulumi.Config("cloudguard")
    raw: dict[str, Any] = {}
    for key in _KEYS:
        value = config.get_object(key) if key in _OBJECT_KEYS else config.get(key)
        if value is not None:
            raw[key] = value
    region = pulumi.Config("aws").get("region") or ""

    return parse_settings(pulumi.get_stack(), raw, region)


_OBJECT_KEYS = frozenset(
    {
        "availabilityZones",
        "apiPublicCidrs",
        "nodeGroup",
        "nodeAutoscaling",
        "serving",
        "database",
        "pipeline",
        "inferenceLogRetentionDays",
        "protectData",
    }
)
_KEYS = _OBJECT_KEYS | {
    "kubernetesVersion",
    "vpcCidr",
    "servingImage",
    "trainerImage",
    "gitopsRepoUrl",
    "gitopsRevision",
}


class _Reader:
    """Typed access to one mapping of raw values, naming the key on error."""

    def __init__(self, raw: Mapping[str, Any], prefix: str = "") -> None:
        self._raw = raw
        self._prefix = prefix

    def _get(self, key: str) -> Any:
        name = self._prefix + key
        if key not in self._raw or self._raw[key] is None:
            raise ConfigError(name, "missing", "set it in stacks/Pulumi.<stack>.yaml")
        value = self._raw[key]
        if isinstance(value, str) and value.strip().startswith(("{", "[")):
            return json.loads(value)
        return value

    def section(self, key: str) -> "_Reader":
        value = self._get(key)
        if not isinstance(value, Mapping):
            raise ConfigError(self._prefix + key, "not a mapping", "give an object")
        return _Reader(value, f"{self._prefix}{key}.")

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(self._prefix + key, f"{value!r} is not text", "quote it")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], example: str) -> str:
        value = self.text(key)
        if not pattern.match(value):
            raise ConfigError(self._prefix + key, f"{value!r} is malformed", example)
        return value

    def integer(self, key: str, *, low: int, high: int) -> int:
        value = self._get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self._prefix + key, f"{value!r} is not an integer", "")
        if not low <= value <= high:
            raise ConfigError(
                self._prefix + key,
                f"{value} is outside {low}..{high}",
                f"pick a value from {low} to {high}",
            )
        return value

    def number(self, key: str, *, low: float, high: float) -> float:
        value = self._get(key)
        if isinstance(value, str):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self._prefix + key, f"{value!r} is not a number", "")
        if not low <= value <= high:
            raise ConfigError(
                self._prefix + key,
                f"{value} is outside {low}..{high}",
                f"pick a value from {low} to {high}",
            )
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise ConfigError(self._prefix + key, f"{value!r} is not a bool", "true")
        return value

    def strings(self, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self._prefix + key, f"{value!r} is not a list", "[...]")
        if not value and not allow_empty:
            raise ConfigError(self._prefix + key, "empty", "give at least one value")
        return tuple(value)


def _cidr(value: str, key: str, *, private: bool) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as error:
        raise ConfigError(
            key, f"{value!r} is not a CIDR ({error})", "e.g. 10.0.0.0/16"
        ) from error
    if private and not network.is_private:
        raise ConfigError(key, f"{value} is not private", "use an RFC 1918 range")
    if not private and network.prefixlen == 0:
        raise ConfigError(
            key,
            f"{value} opens the Kubernetes API to the world",
            "list your office or VPN ranges, or leave it empty for private only",
        )
    return value


def _zones(zones: tuple[str, ...], region: str) -> tuple[str, ...]:
    if len(zones) < 2:
        raise ConfigError(
            "availabilityZones", f"{list(zones)} has fewer than 2", "list 2 or 3 zones"
        )
    for zone in zones:
        if not zone.startswith(region):
            raise ConfigError(
                "availabilityZones", f"{zone} is not in {region}", f"use {region}a..."
            )
    return zones


def _node_group(r: _Reader) -> NodeGroupSettings:
    types = r.strings("instanceTypes")
    for t in types:
        if not _INSTANCE_TYPE.match(t):
            raise ConfigError("nodeGroup.instanceTypes", f"{t!r}", "e.g. m6i.large")
    group = NodeGroupSettings(
        instance_types=types,
        min_size=r.integer("minSize", low=1, high=50),
        desired_size=r.integer("desiredSize", low=1, high=50),
        max_size=r.integer("maxSize", low=1, high=50),
        disk_gib=r.integer("diskGib", low=20, high=500),
    )
    if not group.min_size <= group.desired_size <= group.max_size:
        raise ConfigError(
            "nodeGroup",
            f"sizes {group.min_size}/{group.desired_size}/{group.max_size}",
            "keep minSize <= desiredSize <= maxSize",
        )
    return group


def _node_autoscaling(r: _Reader) -> NodeAutoscalingSettings:
    capacity = r.strings("capacityTypes")
    for c in capacity:
        if c not in ("on-demand", "spot"):
            raise ConfigError("nodeAutoscaling.capacityTypes", repr(c), "on-demand")
    return NodeAutoscalingSettings(
        cpu_limit=r.integer("cpuLimit", low=2, high=2000),
        memory_limit_gib=r.integer("memoryLimitGib", low=4, high=8000),
        instance_families=r.strings("instanceFamilies"),
        capacity_types=capacity,
    )


def _serving(r: _Reader) -> ServingSettings:
    serving = ServingSettings(
        min_replicas=r.integer("minReplicas", low=1, high=100),
        max_replicas=r.integer("maxReplicas", low=1, high=200),
        target_cpu_percent=r.integer("targetCpuPercent", low=10, high=95),
        target_requests_per_second=r.integer(
            "targetRequestsPerSecond", low=1, high=10000
        ),
        shadow_share=r.number("shadowShare", low=0.0, high=1.0),
    )
    if serving.max_replicas < serving.min_replicas:
        raise ConfigError(
            "serving.maxReplicas",
            f"{serving.max_replicas} < minReplicas {serving.min_replicas}",
            "raise maxReplicas",
        )
    return serving


def _database(r: _Reader) -> DatabaseSettings:
    return DatabaseSettings(
        instance_class=r.matching(
            "instanceClass", re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$"), "db.t4g.micro"
        ),
        allocated_storage_gib=r.integer("allocatedStorageGib", low=20, high=2000),
        multi_az=r.boolean("multiAz"),
        backup_retention_days=r.integer("backupRetentionDays", low=1, high=35),
        engine_version=r.matching(
            "engineVersion", re.compile(r"^1[4-8](\.\d+)?$"), "e.g. 17.4"
        ),
    )


def _pipeline(r: _Reader) -> PipelineSettings:
    timezone = r.text("timezone")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(timezone)
    except (KeyError, ValueError) as error:
        raise ConfigError(
            "pipeline.timezone", f"{timezone!r} is unknown ({error})", "Europe/Berlin"
        ) from error
    return PipelineSettings(
        schedule=r.matching("schedule", _CRON, "five cron fields, e.g. 0 3 * * *"),
        timezone=timezone,
        starting_deadline_seconds=r.integer(
            "startingDeadlineSeconds", low=60, high=86400
        ),
    )
