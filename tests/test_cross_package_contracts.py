"""Names that cross package boundaries without an import must still agree.

The platform may not import serving code, so the canary analysis and the HPA
spell the service's metric names themselves; this test is what keeps them
honest.
"""

from cloudguard_platform import constants
from cloudguard_serving.metrics import Metrics
from prometheus_client import generate_latest


def _exported_series() -> str:
    metrics = Metrics()
    metrics.requests.labels("/v1/predict", "POST", "200").inc()
    metrics.predictions.labels("failure", "1").inc()
    metrics.latency.labels("/v1/predict", "POST", "200").observe(0.01)
    return generate_latest(metrics.registry).decode()


def test_canary_and_autoscaling_query_series_the_service_exports() -> None:
    exported = _exported_series()

    for name in (
        constants.METRIC_REQUESTS,
        constants.METRIC_LATENCY_BUCKET,
        constants.METRIC_PREDICTIONS,
    ):
        assert f"\n{name}{{" in exported, name


def test_failure_share_uses_the_decision_label_the_service_writes() -> None:
    exported = _exported_series()

    assert 'decision="failure"' in exported
    assert 'status="200"' in exported
