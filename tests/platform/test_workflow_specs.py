"""Fitting the rendered pipeline manifests to a stack (a pure function)."""

import copy
from pathlib import Path

import pytest
import yaml
from cloudguard_platform import ManifestError, settings_for
from cloudguard_platform.workflow_specs import (
    for_stack,
    load_pipeline_manifests,
    pipeline_parameters,
)

from .conftest import PIPELINE_DIR, STACKS_DIR


def test_overrides_schedule_identity_images_and_parameters() -> None:
    settings = settings_for("staging", STACKS_DIR)
    loaded = load_pipeline_manifests(PIPELINE_DIR)

    fitted = for_stack(loaded, settings)

    template, cron = fitted.workflow_template, fitted.cron_workflow
    values = {
        p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]
    }
    assert values["data-uri"] == "s3://cloudguard-staging-raw-data/incoming/"
    assert values["tracking-uri"] == pipeline_parameters(settings)["tracking-uri"]
    assert "value" not in {
        k
        for p in template["spec"]["arguments"]["parameters"]
        if p["name"] == "run-key"
        for k in p
    }
    assert template["spec"]["serviceAccountName"] == "cloudguard-trainer"
    assert cron["spec"]["schedules"] == ["30 3 * * *"]
    assert cron["spec"]["timezone"] == "Europe/Berlin"
    assert cron["metadata"]["namespace"] == template["metadata"]["namespace"]


def test_fitting_leaves_the_loaded_manifests_untouched() -> None:
    loaded = load_pipeline_manifests(PIPELINE_DIR)
    before = copy.deepcopy(loaded)

    for_stack(loaded, settings_for("prod", STACKS_DIR))

    assert loaded == before


def test_a_missing_file_names_the_render_command(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cloudguard pipeline render"):
        load_pipeline_manifests(tmp_path)


def test_a_template_without_an_agreed_parameter_is_refused(tmp_path: Path) -> None:
    for name in ("workflow-template.yaml", "cron-workflow.yaml"):
        document = yaml.safe_load((PIPELINE_DIR / name).read_text(encoding="utf-8"))
        if document["kind"] == "WorkflowTemplate":
            params = document["spec"]["arguments"]["parameters"]
            document["spec"]["arguments"]["parameters"] = [
                p for p in params if p["name"] != "serving-reload-url"
            ]
        (tmp_path / name).write_text(yaml.safe_dump(document), encoding="utf-8")

    loaded = load_pipeline_manifests(tmp_path)

    with pytest.raises(ManifestError, match="serving-reload-url"):
        for_stack(loaded, settings_for("dev", STACKS_DIR))
