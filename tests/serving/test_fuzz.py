"""Fuzz the API from its own OpenAPI schema (schemathesis): never a 5xx.

Runs against a real `cloudguard-serve` on 127.0.0.1 with a bounded number of
examples per operation, with and without a valid key.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.serving.conftest import KEY, Served, Trained, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_target(
    trained: Trained, tmp_path_factory: pytest.TempPathFactory, key_hash: str
) -> Iterator[Served]:
    server = start_server(
        tmp_path_factory.mktemp("fuzz"),
        key_hash,
        trained.tracking_uri,
        CLOUDGUARD_POLL_INTERVAL_S=600,
        CLOUDGUARD_INFERENCE_LOG=0,
        CLOUDGUARD_MAX_READINGS=20,
    )
    yield server
    server.stop()


def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI document, built without starting the service."""
    from cloudguard_serving import Settings, create_app

    app = create_app(Settings(auth=False, inference_log=False))
    return dict(app.openapi_schema.to_schema())


schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_input_makes_the_service_fail(
    case: schemathesis.Case, fuzz_target: Served
) -> None:
    for headers in ({"Authorization": f"Bearer {KEY}"}, {}):
        response = case.call(base_url=fuzz_target.url, headers=headers, timeout=30)

        assert response.status_code < 500, (case.body, response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {
                "status",
                "error",
                "message",
                "request_id",
                "details",
            }
