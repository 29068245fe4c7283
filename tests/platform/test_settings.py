"""Stack settings: the three stacks load; bad values fail naming key and fix."""

import json
from typing import Any

import pytest
from cloudguard_platform import STACKS, ConfigError, parse_settings
from cloudguard_platform.synth import load_stack_config, settings_for

from .conftest import STACKS_DIR


def _raw(stack: str) -> dict[str, Any]:
    config, _ = load_stack_config(STACKS_DIR / f"Pulumi.{stack}.yaml")
    return {
        k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("cloudguard:")
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_loads(stack: str) -> None:
    settings = settings_for(stack, STACKS_DIR)

    assert settings.stack == stack
    assert not settings.serving_image.endswith(":latest")


def test_stacks_differ_in_size_and_protection() -> None:
    dev, prod = settings_for("dev", STACKS_DIR), settings_for("prod", STACKS_DIR)

    assert dev.node_autoscaling.cpu_limit < prod.node_autoscaling.cpu_limit
    assert dev.serving.max_replicas < prod.serving.max_replicas
    assert (dev.protect_data, prod.protect_data) == (False, True)
    assert prod.api_public_cidrs == ()


def _with(stack: str, key: str, value: Any) -> dict[str, Any]:
    raw = _raw(stack)
    if "." in key:
        section, field = key.split(".")
        body = json.loads(raw[section])
        body[field] = value
        raw[section] = json.dumps(body)
    elif value is None:
        raw.pop(key)
    else:
        raw[key] = value
    return raw


@pytest.mark.parametrize(
    ("stack", "key", "value", "named"),
    [
        ("staging", "apiPublicCidrs", '["0.0.0.0/0"]', "apiPublicCidrs"),
        ("dev", "servingImage", "ghcr.io/cloudguard/serving:latest", "image"),
        ("dev", "servingImage", "ghcr.io/cloudguard/serving", "servingImage"),
        ("prod", "protectData", "false", "protectData"),
        ("dev", "nodeGroup.minSize", 5, "nodeGroup"),
        ("dev", "pipeline.timezone", "Mars/Olympus", "pipeline.timezone"),
        ("dev", "pipeline.schedule", "every day", "pipeline.schedule"),
        ("dev", "vpcCidr", "8.8.0.0/16", "vpcCidr"),
        ("dev", "kubernetesVersion", "1.19", "kubernetesVersion"),
        ("dev", "serving.shadowShare", 1.5, "serving.shadowShare"),
        (
            "dev",
            "availabilityZones",
            '["us-east-1a", "us-east-1b"]',
            "availabilityZones",
        ),
        ("dev", "gitopsRepoUrl", None, "gitopsRepoUrl"),
    ],
)
def test_bad_setting_fails_naming_the_key(
    stack: str, key: str, value: Any, named: str
) -> None:
    with pytest.raises(ConfigError, match=f"cloudguard:{named}"):
        parse_settings(stack, _with(stack, key, value), "eu-central-1")


def test_missing_region_is_explained() -> None:
    with pytest.raises(ConfigError, match="pulumi config set aws:region"):
        parse_settings("dev", _raw("dev"), "")
