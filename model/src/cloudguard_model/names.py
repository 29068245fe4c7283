"""Names shared across CloudGuard: defined once here, imported everywhere else.

Serving, pipelines and the CLI import these rather than retyping strings, so a
rename is one edit. The platform package keeps its own copy of the few names it
needs (it must not import training code) and a test checks the two agree.
"""

from typing import Final

MODEL_NAME: Final = "cloudguard-failure"
"""Registered model name in the MLflow model registry."""

ALIAS_CHAMPION: Final = "champion"
ALIAS_CHALLENGER: Final = "challenger"
ALIAS_PREVIOUS: Final = "previous"

EXPERIMENT_NAME: Final = "cloudguard-failure"
"""MLflow experiment that holds training and gate runs."""

# Environment variables read by the CLI, the pipeline steps and the service.
ENV_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
ENV_S3_ENDPOINT: Final = "AWS_ENDPOINT_URL_S3"
ENV_RAW_BUCKET: Final = "CLOUDGUARD_RAW_BUCKET"
ENV_ARTIFACT_BUCKET: Final = "CLOUDGUARD_ARTIFACT_BUCKET"
ENV_INFERENCE_BUCKET: Final = "CLOUDGUARD_INFERENCE_BUCKET"
ENV_API_KEYS: Final = "CLOUDGUARD_API_KEYS"
ENV_MODEL_ALIAS: Final = "CLOUDGUARD_MODEL_ALIAS"

# Bucket names used by the local demo; the cloud stacks derive their own.
DEFAULT_RAW_BUCKET: Final = "cloudguard-raw-data"
DEFAULT_ARTIFACT_BUCKET: Final = "cloudguard-artifacts"
DEFAULT_INFERENCE_BUCKET: Final = "cloudguard-inference-logs"
ENV_GIT_COMMIT: Final = "CLOUDGUARD_GIT_COMMIT"
"""Commit of the running code, baked into images; written into lineage."""
