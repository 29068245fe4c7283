"""Kubernetes and Argo manifests, built by pure functions from the settings.

Two owners share the cluster. Pulumi creates what needs cloud outputs
(namespaces, IRSA-annotated service accounts, the runtime ConfigMap, Helm
releases, the root Application). Argo CD owns the workloads: the tree returned
by `gitops_tree` is committed under `deploy/apps/<stack>/` and synced from git,
so a new image or model pin reaches the cluster only through the repo.
"""

import json
from typing import Any

from cloudguard_platform import constants as c
from cloudguard_platform.settings import Settings

Manifest = dict[str, Any]

# Canary thresholds the analysis enforces against the stable version.
MAX_ERROR_RATIO = 0.02
MAX_P99_SECONDS = 0.25
MAX_FAILURE_SHARE_DELTA = 0.05
CANARY_STEPS: tuple[dict[str, Any], ...] = (
    {"setWeight": 5},
    {"pause": {"duration": "10m"}},
    {"setWeight": 25},
    {"pause": {"duration": "20m"}},
    {"setWeight": 100},
)

_SPOOL_DIR = "/var/spool/cloudguard"
_POD_LABEL = "__meta_kubernetes_pod_label_"
_RUNTIME_ENV = [{"configMapRef": {"name": c.RUNTIME_CONFIGMAP}}]
_API_KEYS_DIR = "/etc/cloudguard/api-keys"


def labels(app: str, stack: str) -> dict[str, str]:
    """Standard labels on every object the platform renders."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "cloudguard",
        "cloudguard.io/stack": stack,
    }


def _meta(name: str, namespace: str, app: str, stack: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(app, stack)}


def container_security() -> dict[str, Any]:
    """Container security context every CloudGuard container runs with."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict[str, Any]:
    """Pod security context every CloudGuard pod runs with."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _spread(app: str, settings: Settings) -> list[dict[str, Any]]:
    # dev may run one zone's worth of nodes; the others must spread or wait.
    zone_rule = "ScheduleAnyway" if settings.stack == "dev" else "DoNotSchedule"
    selector = {"matchLabels": {"app.kubernetes.io/name": app}}
    return [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": zone_rule,
            "labelSelector": selector,
        },
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
        },
    ]


# --- Pulumi-owned objects ---------------------------------------------------


def namespace(name: str, stack: str) -> Manifest:
    """A namespace with a Pod Security Standard enforced.

    Our own namespace enforces `restricted`. Namespaces of third-party charts
    enforce `baseline` and warn on `restricted`: their pods are not ours to
    harden, but nothing privileged gets in.
    """
    level = "restricted" if name == c.NS_APP else "baseline"
    ns_labels = labels(name, stack) | {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": ns_labels},
    }


def service_account(name: str, ns: str, role_arn: object, stack: str) -> Manifest:
    """A service account bound to its IRSA role (`role_arn` may be an Output)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(name, ns, name, stack)
        | {"annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "automountServiceAccountToken": False,
    }


def runtime_config(values: dict[str, str], stack: str) -> Manifest:
    """Non-secret runtime values the workloads read with `envFrom`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(c.RUNTIME_CONFIGMAP, c.NS_APP, "cloudguard", stack),
        "data": dict(sorted(values.items())),
    }


def runtime_values(
    settings: Settings, db_endpoint: str, db_secret_arn: str
) -> dict[str, str]:
    """The runtime ConfigMap's data: bucket names, tracking URI, database refs."""
    return {
        c.ENV_RAW_BUCKET: settings.bucket_name(c.BUCKET_RAW),
        c.ENV_ARTIFACT_BUCKET: settings.bucket_name(c.BUCKET_ARTIFACTS),
        c.ENV_INFERENCE_BUCKET: settings.bucket_name(c.BUCKET_INFERENCE),
        c.ENV_TRACKING_URI: (
            f"http://{c.MLFLOW_APP}.{c.NS_APP}.svc.cluster.local:{c.MLFLOW_PORT}"
        ),
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "CLOUDGUARD_DB_ENDPOINT": db_endpoint,
        "CLOUDGUARD_DB_SECRET_ARN": db_secret_arn,
    }


def api_keys_secret_name() -> str:
    """Name of the Secret holding the serving API keys (created by Pulumi)."""
    return c.API_KEYS_SECRET


def root_application(settings: Settings) -> Manifest:
    """The app-of-apps: syncs the child Applications of this stack from git."""
    return application(
        settings,
        name=f"cloudguard-{settings.stack}-root",
        path=f"deploy/apps/{settings.stack}/applications",
        destination_namespace=c.NS_ARGOCD,
    )


def application(
    settings: Settings, *, name: str, path: str, destination_namespace: str
) -> Manifest:
    """An Argo CD Application with automated, self-healing, pruning sync."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": c.NS_ARGOCD,
            "labels": labels(name, settings.stack),
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": settings.gitops_repo_url,
                "targetRevision": settings.gitops_revision,
                "path": path,
            },
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": destination_namespace,
            },
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["ServerSideApply=true"],
                "retry": {
                    "limit": 5,
                    "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"},
                },
            },
        },
    }


def node_pool(settings: Settings) -> Manifest:
    """Karpenter NodePool: what may be launched and the stack's hard ceiling."""
    scaling = settings.node_autoscaling
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": "cloudguard",
            "labels": labels("karpenter", settings.stack),
        },
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.k8s.aws",
                        "kind": "EC2NodeClass",
                        "name": "cloudguard",
                    },
                    "expireAfter": "720h",
                    "requirements": [
                        {
                            "key": "karpenter.k8s.aws/instance-family",
                            "operator": "In",
                            "values": list(scaling.instance_families),
                        },
                        {
                            "key": "karpenter.sh/capacity-type",
                            "operator": "In",
                            "values": list(scaling.capacity_types),
                        },
                        {
                            "key": "kubernetes.io/arch",
                            "operator": "In",
                            "values": ["amd64"],
                        },
                        {
                            "key": "topology.kubernetes.io/zone",
                            "operator": "In",
                            "values": list(settings.availability_zones),
                        },
                    ],
                }
            },
            "limits": {
                "cpu": str(scaling.cpu_limit),
                "memory": f"{scaling.memory_limit_gib}Gi",
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "5m",
            },
        },
    }


def ec2_node_class(
    settings: Settings, node_role_name: str, cluster_name: str
) -> Manifest:
    """Karpenter EC2NodeClass: private subnets, IMDSv2 with hop limit 1."""
    subnets = {"tags": {"karpenter.sh/discovery": cluster_name}}
    # The security group EKS creates for the cluster carries this tag.
    groups = {"tags": {"aws:eks:cluster-name": cluster_name}}
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {
            "name": "cloudguard",
            "labels": labels("karpenter", settings.stack),
        },
        "spec": {
            "role": node_role_name,
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [subnets],
            "securityGroupSelectorTerms": [groups],
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "ebs": {
                        "volumeSize": "50Gi",
                        "volumeType": "gp3",
                        "encrypted": True,
                    },
                }
            ],
        },
    }


def scrape_config() -> dict[str, Any]:
    """Prometheus scrape job for the serving pods, canary and stable alike.

    The Rollouts pod-template hash becomes a label, so the analysis can compare
    the canary's series with the stable ones.
    """
    return {
        "job_name": "cloudguard-serving",
        "metrics_path": "/metrics",
        "scrape_interval": "15s",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [c.NS_APP]}}],
        "relabel_configs": [
            {
                "source_labels": [f"{_POD_LABEL}app_kubernetes_io_name"],
                "regex": c.SERVING_APP,
                "action": "keep",
            },
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "regex": str(c.SERVING_PORT),
                "action": "keep",
            },
            {
                "source_labels": [f"{_POD_LABEL}rollouts_pod_template_hash"],
                "target_label": "rollouts_pod_template_hash",
            },
            {
                "source_labels": ["__meta_kubernetes_namespace"],
                "target_label": "namespace",
            },
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def prometheus_adapter_rules() -> dict[str, Any]:
    """prometheus-adapter rule exposing the request rate to the HPA."""
    return {
        "custom": [
            {
                "seriesQuery": f'{c.METRIC_REQUESTS}{{namespace!="",pod!=""}}',
                "resources": {
                    "overrides": {
                        "namespace": {"resource": "namespace"},
                        "pod": {"resource": "pod"},
                    }
                },
                "name": {
                    "matches": f"^{c.METRIC_REQUESTS}$",
                    "as": REQUEST_RATE_METRIC,
                },
                "metricsQuery": (
                    "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)"
                ),
            }
        ]
    }


REQUEST_RATE_METRIC = "cloudguard_http_requests_per_second"


# --- Argo CD-owned workloads (committed under deploy/apps/<stack>/) ---------


_PRE_STOP_SECONDS = 10


def _serving_container(settings: Settings) -> dict[str, Any]:
    serving = settings.serving
    probe = {"httpGet": {"path": "/health/live", "port": "http"}}
    return {
        "name": "serving",
        "image": settings.serving_image,
        "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": c.SERVING_PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": c.RUNTIME_CONFIGMAP}}],
        "env": [
            {"name": "CLOUDGUARD_HOST", "value": "0.0.0.0"},  # noqa: S104 - in-pod
            {"name": "CLOUDGUARD_PORT", "value": str(c.SERVING_PORT)},
            {"name": c.ENV_MODEL_ALIAS, "value": c.ALIAS_CHAMPION},
            {"name": "CLOUDGUARD_SHADOW_ALIAS", "value": c.ALIAS_CHALLENGER},
            {"name": "CLOUDGUARD_SHADOW_SHARE", "value": str(serving.shadow_share)},
            {"name": "CLOUDGUARD_API_KEYS_FILE", "value": f"{_API_KEYS_DIR}/keys"},
            {"name": "CLOUDGUARD_SPOOL_DIR", "value": _SPOOL_DIR},
        ],
        "resources": {
            "requests": {"cpu": "500m", "memory": "512Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        },
        "startupProbe": probe | {"periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": probe | {"periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/health/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        # The service stops being ready only once SIGTERM arrives; this pause
        # lets the endpoint controller take the pod out of the Service first,
        # so no gateway request lands on a closing listener.
        "lifecycle": {"preStop": {"sleep": {"seconds": _PRE_STOP_SECONDS}}},
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
            {"name": "spool", "mountPath": _SPOOL_DIR},
            {"name": "api-keys", "mountPath": _API_KEYS_DIR, "readOnly": True},
        ],
    }


def serving_rollout(settings: Settings) -> Manifest:
    """The serving service as an Argo Rollouts canary with Prometheus analysis.

    `replicas` is left to the HPA. Without a mesh, Rollouts reaches the weights
    by scaling canary and stable ReplicaSets.
    """
    app = c.SERVING_APP
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": _meta(app, c.NS_APP, app, settings.stack),
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "template": {
                "metadata": {"labels": labels(app, settings.stack)},
                "spec": {
                    "serviceAccountName": c.SA_SERVING,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    # preStop pause, then drain and flush the inference log.
                    "terminationGracePeriodSeconds": _PRE_STOP_SECONDS + 30,
                    "topologySpreadConstraints": _spread(app, settings),
                    "containers": [_serving_container(settings)],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                        {"name": "spool", "emptyDir": {"sizeLimit": "2Gi"}},
                        {
                            "name": "api-keys",
                            "secret": {"secretName": c.API_KEYS_SECRET},
                        },
                    ],
                },
            },
            "strategy": {
                "canary": {
                    "stableService": f"{app}-stable",
                    "canaryService": f"{app}-canary",
                    "maxSurge": "25%",
                    "maxUnavailable": 0,
                    "abortScaleDownDelaySeconds": 30,
                    "analysis": {
                        "templates": [{"templateName": f"{app}-canary"}],
                        "startingStep": 1,
                        "args": [
                            {
                                "name": "canary-hash",
                                "valueFrom": {"podTemplateHashValue": "Latest"},
                            },
                            {
                                "name": "stable-hash",
                                "valueFrom": {"podTemplateHashValue": "Stable"},
                            },
                        ],
                    },
                    "steps": [dict(step) for step in CANARY_STEPS],
                }
            },
        },
    }


def _selector(hash_arg: str) -> str:
    pod_hash = "{{args." + hash_arg + "}}"
    return f'namespace="{c.NS_APP}",rollouts_pod_template_hash="{pod_hash}"'


def _rate(metric: str, hash_arg: str, extra: str = "", window: str = "5m") -> str:
    return f"sum(rate({metric}{{{_selector(hash_arg)}{extra}}}[{window}]))"


def analysis_template(settings: Settings) -> Manifest:
    """Canary analysis: error ratio, p99 latency, failure share vs. stable.

    A breach fails the analysis, which aborts the Rollout and scales the canary
    away. No traffic yet (empty or NaN result) is not a breach.
    """
    app = c.SERVING_APP
    server_errors = _rate(c.METRIC_REQUESTS, "canary-hash", ',status=~"5.."')
    error_ratio = f"{server_errors} / {_rate(c.METRIC_REQUESTS, 'canary-hash')}"
    selector = _selector("canary-hash")
    p99 = (
        "histogram_quantile(0.99, sum by (le) "
        f"(rate({c.METRIC_LATENCY_BUCKET}{{{selector}}}[5m])))"
    )

    def share(hash_arg: str) -> str:
        failures = _rate(c.METRIC_PREDICTIONS, hash_arg, ',decision="failure"', "15m")
        total = _rate(c.METRIC_PREDICTIONS, hash_arg, "", "15m")
        return f"({failures} / {total})"

    failure_delta = f"abs({share('canary-hash')} - {share('stable-hash')})"

    def metric(name: str, query: str, limit: float) -> dict[str, Any]:
        return {
            "name": name,
            "interval": "1m",
            "failureLimit": 1,
            "failureCondition": (
                f"len(result) > 0 && !isNaN(result[0]) && result[0] > {limit}"
            ),
            "provider": {"prometheus": {"address": c.PROMETHEUS_URL, "query": query}},
        }

    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": _meta(f"{app}-canary", c.NS_APP, app, settings.stack),
        "spec": {
            "args": [{"name": "canary-hash"}, {"name": "stable-hash"}],
            "metrics": [
                metric("error-ratio", error_ratio, MAX_ERROR_RATIO),
                metric("p99-latency-seconds", p99, MAX_P99_SECONDS),
                metric("failure-share-delta", failure_delta, MAX_FAILURE_SHARE_DELTA),
            ],
        },
    }


def serving_services(settings: Settings) -> list[Manifest]:
    """The main Service plus the stable and canary Services Rollouts steers."""
    app = c.SERVING_APP
    services = []
    for name in (app, f"{app}-stable", f"{app}-canary"):
        services.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(name, c.NS_APP, app, settings.stack),
                "spec": {
                    "type": "ClusterIP",
                    "selector": {"app.kubernetes.io/name": app},
                    "ports": [
                        {
                            "name": "http",
                            "port": c.SERVING_PORT,
                            "targetPort": "http",
                            "protocol": "TCP",
                        }
                    ],
                },
            }
        )
    return services


def serving_hpa(settings: Settings) -> Manifest:
    """Scale the Rollout on CPU and on request rate per pod."""
    app = c.SERVING_APP
    serving = settings.serving
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(app, c.NS_APP, app, settings.stack),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "name": app,
            },
            "minReplicas": serving.min_replicas,
            "maxReplicas": serving.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": serving.target_cpu_percent,
                        },
                    },
                },
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": REQUEST_RATE_METRIC},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(serving.target_requests_per_second),
                        },
                    },
                },
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                },
            },
        },
    }


def serving_pdb(settings: Settings) -> Manifest:
    """At most one serving pod down at a time during voluntary disruptions."""
    app = c.SERVING_APP
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(app, c.NS_APP, app, settings.stack),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
        },
    }


# The MLflow container builds its backend URI from the Secrets Manager secret
# the init container fetched into a memory-backed volume; the password never
# appears in config, manifests or the Pulumi state.
_MLFLOW_START = """set -eu
uri=$(python - <<'PY'
import json, os, urllib.parse
secret = json.load(open("/run/mlflow/db.json"))
user = urllib.parse.quote(secret["username"], safe="")
password = urllib.parse.quote(secret["password"], safe="")
host = os.environ["CLOUDGUARD_DB_ENDPOINT"]
print(f"postgresql://{user}:{password}@{host}/mlflow?sslmode=require")
PY
)
exec mlflow server --host 0.0.0.0 --port 5000 \\
  --backend-store-uri "$uri" \\
  --artifacts-destination "s3://${CLOUDGUARD_ARTIFACT_BUCKET}/mlflow" \\
  --serve-artifacts
"""

# Runs in the trainer image (boto3 inside) as the MLflow service account.
_FETCH_DB_CREDENTIALS = """import boto3, os
client = boto3.client("secretsmanager")
secret = client.get_secret_value(SecretId=os.environ["CLOUDGUARD_DB_SECRET_ARN"])
with open("/run/mlflow/db.json", "w", encoding="utf-8") as out:
    out.write(secret["SecretString"])
"""


def mlflow_deployment(settings: Settings) -> Manifest:
    """MLflow tracking server: RDS backend, S3 artifacts through IRSA."""
    app = c.MLFLOW_APP
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
        {"name": "db-secret", "mountPath": "/run/mlflow"},
    ]
    resources = {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(app, c.NS_APP, app, settings.stack),
        "spec": {
            "replicas": 1 if settings.stack == "dev" else 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "template": {
                "metadata": {"labels": labels(app, settings.stack)},
                "spec": {
                    "serviceAccountName": c.SA_MLFLOW,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    "topologySpreadConstraints": _spread(app, settings),
                    "initContainers": [
                        {
                            "name": "fetch-db-secret",
                            "image": settings.trainer_image,
                            "imagePullPolicy": "Always",
                            "command": ["python", "-c", _FETCH_DB_CREDENTIALS],
                            "envFrom": _RUNTIME_ENV,
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"cpu": "200m", "memory": "128Mi"},
                            },
                            "securityContext": container_security(),
                            "volumeMounts": mounts,
                        }
                    ],
                    "containers": [
                        {
                            "name": "mlflow",
                            "image": settings.trainer_image,
                            "imagePullPolicy": "Always",
                            "command": ["sh", "-c", _MLFLOW_START],
                            "ports": [
                                {
                                    "name": "http",
                                    "containerPort": c.MLFLOW_PORT,
                                    "protocol": "TCP",
                                }
                            ],
                            "envFrom": _RUNTIME_ENV,
                            "resources": resources,
                            "startupProbe": probe
                            | {"periodSeconds": 5, "failureThreshold": 60},
                            "livenessProbe": probe | {"periodSeconds": 15},
                            "readinessProbe": probe | {"periodSeconds": 5},
                            "securityContext": container_security(),
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                        {
                            "name": "db-secret",
                            "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"},
                        },
                    ],
                },
            },
        },
    }


def mlflow_service(settings: Settings) -> Manifest:
    """ClusterIP Service in front of MLflow (the tracking URI points here)."""
    app = c.MLFLOW_APP
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(app, c.NS_APP, app, settings.stack),
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": app},
            "ports": [
                {
                    "name": "http",
                    "port": c.MLFLOW_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def network_policy(
    settings: Settings, app: str, port: int, sources: list[dict[str, Any]]
) -> Manifest:
    """Admit traffic to an app's pods only from the listed peers and port."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(app, c.NS_APP, app, settings.stack),
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": sources, "ports": [{"port": port, "protocol": "TCP"}]}
            ],
        },
    }


def _namespace_peer(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def serving_network_policy(settings: Settings) -> Manifest:
    """Serving: from the app namespace (gateways, pipeline) and Prometheus."""
    peers = [_namespace_peer(c.NS_APP), _namespace_peer(c.NS_MONITORING)]
    return network_policy(settings, c.SERVING_APP, c.SERVING_PORT, peers)


def mlflow_network_policy(settings: Settings) -> Manifest:
    """MLflow: only from the app namespace (serving, pipeline steps)."""
    peers = [_namespace_peer(c.NS_APP)]
    return network_policy(settings, c.MLFLOW_APP, c.MLFLOW_PORT, peers)


def gitops_tree(settings: Settings) -> dict[str, list[Manifest]]:
    """Every file under `deploy/apps/<stack>/`, keyed by relative path."""
    stack = settings.stack
    base = f"deploy/apps/{stack}"
    children = {
        "serving": f"{base}/serving",
        "mlflow": f"{base}/mlflow",
    }
    return {
        "applications/serving.yaml": [
            application(
                settings,
                name=f"cloudguard-{stack}-serving",
                path=children["serving"],
                destination_namespace=c.NS_APP,
            )
        ],
        "applications/mlflow.yaml": [
            application(
                settings,
                name=f"cloudguard-{stack}-mlflow",
                path=children["mlflow"],
                destination_namespace=c.NS_APP,
            )
        ],
        "serving/rollout.yaml": [serving_rollout(settings)],
        "serving/analysis-template.yaml": [analysis_template(settings)],
        "serving/services.yaml": serving_services(settings),
        "serving/hpa.yaml": [serving_hpa(settings)],
        "serving/pdb.yaml": [serving_pdb(settings)],
        "serving/network-policy.yaml": [serving_network_policy(settings)],
        "mlflow/deployment.yaml": [mlflow_deployment(settings)],
        "mlflow/service.yaml": [mlflow_service(settings)],
        "mlflow/network-policy.yaml": [mlflow_network_policy(settings)],
    }


def to_json(document: Any) -> str:
    """Stable JSON for policy documents and Helm values."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
