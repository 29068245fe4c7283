"""Load the rendered pipeline manifests and fit them to one stack.

The pipelines package renders `deploy/pipelines/workflow-template.yaml` and
`cron-workflow.yaml`; the platform reads those files as data (it imports no
pipelines code) and overrides, per stack, what only the stack knows: schedule,
timezone, namespace, images, service accounts and parameter values.
"""

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cloudguard_platform import constants as c
from cloudguard_platform.errors import ManifestError
from cloudguard_platform.settings import Settings

_logger = logging.getLogger(__name__)

TEMPLATE_FILE = "workflow-template.yaml"
CRON_FILE = "cron-workflow.yaml"
REQUIRED_PARAMETERS = (
    "data-uri",
    "snapshot-prefix",
    "evaluation-uri",
    "tracking-uri",
    "serving-reload-url",
    "run-key",
)


@dataclass(frozen=True)
class PipelineManifests:
    """The WorkflowTemplate and the CronWorkflow that runs it."""

    workflow_template: dict[str, Any]
    cron_workflow: dict[str, Any]


def default_pipeline_dir() -> Path:
    """`deploy/pipelines/` of the repository this package sits in."""
    return Path(__file__).resolve().parents[3] / "deploy" / "pipelines"


def load_pipeline_manifests(directory: Path) -> PipelineManifests:
    """Read both rendered files; fail naming the file and how to produce it."""
    documents = []
    for name, kind in (
        (TEMPLATE_FILE, "WorkflowTemplate"),
        (CRON_FILE, "CronWorkflow"),
    ):
        path = directory / name
        if not path.is_file():
            raise ManifestError(
                f"{path} is missing; run `cloudguard pipeline render --out {directory}`"
            )
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("kind") != kind:
            raise ManifestError(f"{path} is not a {kind}; re-render it")
        documents.append(document)

    return PipelineManifests(documents[0], documents[1])


def pipeline_parameters(settings: Settings) -> dict[str, str]:
    """Parameter values the stack gives the WorkflowTemplate."""
    raw = settings.bucket_name(c.BUCKET_RAW)
    artifacts = settings.bucket_name(c.BUCKET_ARTIFACTS)
    service = f"{c.SERVING_APP}.{c.NS_APP}.svc.cluster.local:{c.SERVING_PORT}"
    return {
        "data-uri": f"s3://{raw}/incoming/",
        "snapshot-prefix": f"s3://{raw}/snapshots/",
        "evaluation-uri": f"s3://{artifacts}/evaluation/ai4i-frozen.csv",
        "artifact-bucket": artifacts,
        "tracking-uri": (
            f"http://{c.MLFLOW_APP}.{c.NS_APP}.svc.cluster.local:{c.MLFLOW_PORT}"
        ),
        "serving-reload-url": f"http://{service}/admin/reload",
    }


def for_stack(manifests: PipelineManifests, settings: Settings) -> PipelineManifests:
    """Return copies of both manifests overridden for `settings.stack`."""
    template = copy.deepcopy(manifests.workflow_template)
    cron = copy.deepcopy(manifests.cron_workflow)
    name = template["metadata"]["name"]
    stack_labels = {"cloudguard.io/stack": settings.stack}

    # The WorkflowTemplate: namespace, identities, images, parameter values.
    template["metadata"]["namespace"] = c.NS_APP
    template["metadata"].setdefault("labels", {}).update(stack_labels)
    spec = template["spec"]
    spec["serviceAccountName"] = c.SA_TRAINER
    spec["executor"] = {"serviceAccountName": c.SA_WORKFLOW_EXECUTOR}
    for entry in spec.get("templates", []):
        for key in ("container", "script"):
            if key in entry:
                entry[key]["image"] = settings.trainer_image
                entry[key]["imagePullPolicy"] = "Always"
    _set_parameters(spec, pipeline_parameters(settings), source=TEMPLATE_FILE)

    # The CronWorkflow: when, where, as whom, and never two runs at once.
    cron["metadata"]["namespace"] = c.NS_APP
    cron["metadata"].setdefault("labels", {}).update(stack_labels)
    cron_spec = cron["spec"]
    cron_spec.pop("schedule", None)
    cron_spec["schedules"] = [settings.pipeline.schedule]
    cron_spec["timezone"] = settings.pipeline.timezone
    cron_spec["startingDeadlineSeconds"] = settings.pipeline.starting_deadline_seconds
    cron_spec["concurrencyPolicy"] = "Forbid"
    cron_spec.setdefault("successfulJobsHistoryLimit", 3)
    cron_spec.setdefault("failedJobsHistoryLimit", 5)
    workflow_spec = cron_spec.setdefault("workflowSpec", {})
    workflow_spec["serviceAccountName"] = c.SA_TRAINER
    workflow_spec["executor"] = {"serviceAccountName": c.SA_WORKFLOW_EXECUTOR}
    workflow_spec["workflowTemplateRef"] = {"name": name}

    _logger.info(
        "pipeline_overridden stack=%s schedule=%r timezone=%s",
        settings.stack,
        settings.pipeline.schedule,
        settings.pipeline.timezone,
    )
    return PipelineManifests(template, cron)


def _set_parameters(spec: dict[str, Any], values: dict[str, str], source: str) -> None:
    parameters = spec.get("arguments", {}).get("parameters", [])
    present = {p["name"] for p in parameters}
    missing = [name for name in REQUIRED_PARAMETERS if name not in present]
    if missing:
        raise ManifestError(
            f"{source} lacks parameters {missing}; re-render it from pipelines/"
        )
    for parameter in parameters:
        if parameter["name"] in values:
            parameter["value"] = values[parameter["name"]]
