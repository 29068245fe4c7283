"""Progressive delivery: Argo Rollouts, Prometheus and the metrics adapter.

Rollouts runs the canary; Prometheus scrapes the serving pods (canary and
stable apart by pod-template hash) for the analysis; prometheus-adapter turns
the request rate into the custom metric the HPA scales on.
"""

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from cloudguard_platform import constants as c
from cloudguard_platform import kube, manifests


@dataclass(frozen=True)
class DeliveryArgs:
    """Inputs of `Delivery`."""

    provider: k8s.Provider
    namespaces: list[pulumi.Resource]


def prometheus_values() -> dict[str, object]:
    """Helm values for Prometheus: our scrape job, nothing public."""
    return {
        "alertmanager": {"enabled": False},
        "prometheus-pushgateway": {"enabled": False},
        # Host-level exporters need host access; the analysis needs neither.
        "prometheus-node-exporter": {"enabled": False},
        "server": {"retention": "15d", "service": {"type": "ClusterIP"}},
        "extraScrapeConfigs": yaml.safe_dump(
            [manifests.scrape_config()], sort_keys=False
        ),
    }


def adapter_values() -> dict[str, object]:
    """Helm values for prometheus-adapter: only the request-rate rule."""
    return {
        "prometheus": {
            "url": "http://prometheus-server.monitoring.svc.cluster.local",
            "port": 80,
        },
        "rules": {"default": False, **manifests.prometheus_adapter_rules()},
    }


class Delivery(pulumi.ComponentResource):
    """Argo Rollouts controller plus the metrics stack its analysis reads."""

    def __init__(
        self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudguard:delivery:Delivery", name, None, opts)
        child = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=args.namespaces
        )

        kube.helm_release(
            f"{name}-argo-rollouts",
            c.ARGO_ROLLOUTS,
            c.NS_ROLLOUTS,
            {"dashboard": {"enabled": False}, "controller": {"replicas": 2}},
            child,
        )
        kube.helm_release(
            f"{name}-prometheus",
            c.PROMETHEUS,
            c.NS_MONITORING,
            prometheus_values(),
            child,
        )
        kube.helm_release(
            f"{name}-prometheus-adapter",
            c.PROMETHEUS_ADAPTER,
            c.NS_MONITORING,
            adapter_values(),
            child,
        )

        self.register_outputs({"rolloutsChart": c.ARGO_ROLLOUTS.version})
