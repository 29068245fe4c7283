"""`--notify-url`: POST the record after a promotion; failures are not fatal."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from cloudguard_model.decision import DecisionRecord
from cloudguard_model.gate import notify
from mlflow_server import free_port


def _record() -> DecisionRecord:
    return DecisionRecord(
        kind="promotion", outcome="promoted", promoted=True, reason="passed",
        model_name="cloudguard-failure", challenger={"version": "2", "run_id": None},
        champion=None, champion_note="", checks=[], policy=None, evaluation=None,
        run_key=None, decided_at="2026-12-04T03:00:00.000Z", code_commit="abc",
        tracking_uri="http://127.0.0.1:5000",
    )  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/reload", received
    server.shutdown()
    server.server_close()


def test_promotion_is_posted_to_the_notify_url(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver

    assert notify(url, _record(), timeout_s=2)

    assert received[0]["challenger"]["version"] == "2"
    assert received[0]["format"] == "cloudguard.decision/v1"


def test_unreachable_notify_url_is_logged_not_raised() -> None:
    started = time.monotonic()

    ok = notify(f"http://127.0.0.1:{free_port()}/reload", _record(), timeout_s=1)

    assert ok is False
    assert time.monotonic() - started < 5


def test_notify_url_that_is_not_http_is_skipped() -> None:
    assert notify("file:///etc/passwd", _record()) is False
