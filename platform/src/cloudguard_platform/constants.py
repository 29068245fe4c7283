"""Names and pinned versions the platform program needs.

The names mirror `cloudguard_model.names`; the platform must not import training
code, so it keeps this copy and `tests/platform/test_constants.py` checks that
the two agree.
"""

from typing import Final

MODEL_NAME: Final = "cloudguard-failure"
ALIAS_CHAMPION: Final = "champion"
ALIAS_CHALLENGER: Final = "challenger"

ENV_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
ENV_RAW_BUCKET: Final = "CLOUDGUARD_RAW_BUCKET"
ENV_ARTIFACT_BUCKET: Final = "CLOUDGUARD_ARTIFACT_BUCKET"
ENV_INFERENCE_BUCKET: Final = "CLOUDGUARD_INFERENCE_BUCKET"
ENV_API_KEYS: Final = "CLOUDGUARD_API_KEYS"
ENV_MODEL_ALIAS: Final = "CLOUDGUARD_MODEL_ALIAS"

# Bucket purposes; the cloud stacks derive names as cloudguard-<stack>-<purpose>.
BUCKET_RAW: Final = "raw-data"
BUCKET_ARTIFACTS: Final = "artifacts"
BUCKET_INFERENCE: Final = "inference-logs"

# Kubernetes layout.
NS_APP: Final = "cloudguard"
NS_ARGOCD: Final = "argocd"
NS_WORKFLOWS: Final = "argo"
NS_ROLLOUTS: Final = "argo-rollouts"
NS_KARPENTER: Final = "karpenter"
NS_MONITORING: Final = "monitoring"

SA_TRAINER: Final = "cloudguard-trainer"
SA_SERVING: Final = "cloudguard-serving"
SA_MLFLOW: Final = "cloudguard-mlflow"
SA_WORKFLOW_EXECUTOR: Final = "cloudguard-workflow-executor"
SA_KARPENTER: Final = "karpenter"

RUNTIME_CONFIGMAP: Final = "cloudguard-runtime"
API_KEYS_SECRET: Final = "cloudguard-api-keys"  # noqa: S105 - a name, not a secret
SERVING_APP: Final = "cloudguard-serving"
MLFLOW_APP: Final = "cloudguard-mlflow"
SERVING_PORT: Final = 8000
MLFLOW_PORT: Final = 5000

# Prometheus series the serving service exposes at /metrics; the canary
# analysis queries them. They are the serving engineer's contract.
METRIC_REQUESTS: Final = "cloudguard_http_requests_total"
METRIC_LATENCY_BUCKET: Final = "cloudguard_http_request_duration_seconds_bucket"
METRIC_PREDICTIONS: Final = "cloudguard_predictions_total"
PROMETHEUS_URL: Final = "http://prometheus-server.monitoring.svc.cluster.local:80"


class Chart:
    """A Helm chart pinned to one version."""

    def __init__(self, name: str, repo: str, version: str) -> None:
        self.name = name
        self.repo = repo
        self.version = version


# Pinned Helm charts; bump deliberately, one at a time, after reading the notes.
ARGO_CD: Final = Chart("argo-cd", "https://argoproj.github.io/argo-helm", "8.5.0")
ARGO_WORKFLOWS: Final = Chart(
    "argo-workflows", "https://argoproj.github.io/argo-helm", "0.45.0"
)
ARGO_ROLLOUTS: Final = Chart(
    "argo-rollouts", "https://argoproj.github.io/argo-helm", "2.39.0"
)
KARPENTER: Final = Chart("karpenter", "oci://public.ecr.aws/karpenter", "1.6.0")
PROMETHEUS: Final = Chart(
    "prometheus", "https://prometheus-community.github.io/helm-charts", "27.0.0"
)
PROMETHEUS_ADAPTER: Final = Chart(
    "prometheus-adapter", "https://prometheus-community.github.io/helm-charts", "4.11.0"
)
CHARTS: Final = (
    ARGO_CD,
    ARGO_WORKFLOWS,
    ARGO_ROLLOUTS,
    KARPENTER,
    PROMETHEUS,
    PROMETHEUS_ADAPTER,
)
