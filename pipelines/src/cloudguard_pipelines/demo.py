"""The demo's last act: start the service on 127.0.0.1 and score real readings.

The service runs as its own process (`cloudguard serve`), exactly as a user
would start it; this module never imports the serving package.
"""

import csv
import hashlib
import json
import logging
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from cloudguard_pipelines.errors import SandboxError
from cloudguard_pipelines.harness import cloudguard_executable

logger = logging.getLogger(__name__)

DEMO_UDIS: Final = (3761, 8246, 8027, 8112, 8001, 8002, 5000)
"""Readings the demo scores: heat dissipation (3761), power (8246), overstrain
(8027) and tool wear (8112) failures, and three healthy readings."""

_MODES: Final = ("TWF", "HDF", "PWF", "OSF", "RNF")
_FIELDS: Final = {
    "Type": "product_type",
    "Air temperature [K]": "air_temperature_k",
    "Process temperature [K]": "process_temperature_k",
    "Rotational speed [rpm]": "rotational_speed_rpm",
    "Torque [Nm]": "torque_nm",
    "Tool wear [min]": "tool_wear_min",
}


@dataclass(frozen=True)
class DemoReading:
    """One row of the data set, as the API takes it, with what really happened."""

    udi: int
    reading: dict[str, Any]
    failed: bool
    modes: tuple[str, ...]


def load_readings(path: Path, udis: Sequence[int] = DEMO_UDIS) -> list[DemoReading]:
    """The rows with the given UDIs, in the order given."""
    wanted = {int(udi) for udi in udis}
    found: dict[int, DemoReading] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            udi = int(row["UDI"])
            if udi not in wanted:
                continue
            reading: dict[str, Any] = {"product_type": row["Type"]}
            for column, name in _FIELDS.items():
                if name != "product_type":
                    reading[name] = float(row[column])
            modes = tuple(mode for mode in _MODES if row[mode] == "1")
            found[udi] = DemoReading(udi, reading, row["Machine failure"] == "1", modes)
    missing = sorted(wanted - set(found))
    if missing:
        raise SandboxError(f"{path}: no rows with UDI {missing}")
    return [found[int(udi)] for udi in udis]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api_keys_setting(gateway: str, key: str) -> str:
    """The CLOUDGUARD_API_KEYS value that lets `key` in as `gateway`."""
    return f"{gateway}={hashlib.sha256(key.encode('utf-8')).hexdigest()}"


# No proxies: the service is on this machine, whatever the shell says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceProcess:
    """`cloudguard serve` on 127.0.0.1, started and stopped by us."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        api_key: str,
        cwd: Path,
        log_path: Path,
        port: int | None = None,
        ready_timeout: float = 90.0,
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_key = api_key
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the service and wait until /health/ready says yes."""
        command = [
            cloudguard_executable(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        logger.info("event=service_start port=%d pid=%d", self.port, self._process.pid)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise SandboxError(
                    f"the service exited with code {self._process.returncode} "
                    f"before it was ready; see {self.log_path}"
                )
            try:
                status, body = self.request("GET", "/health/ready", timeout=2)
            except OSError as error:
                last = str(error)
            else:
                if status == 200:
                    return
                last = f"HTTP {status}: {json.dumps(body)[:200]}"
            time.sleep(0.5)
        raise SandboxError(
            f"the service was not ready within {self.ready_timeout:.0f} s ({last}); "
            f"see {self.log_path}"
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """Call the service; return (status, decoded JSON body)."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
            },
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            decoded = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            decoded = raw.decode("utf-8", errors="replace")
        return status, decoded

    def predict(self, readings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """POST /v1/predict; SandboxError unless the answer is 200."""
        status, body = self.request("POST", "/v1/predict", {"readings": list(readings)})
        if status != 200 or not isinstance(body, dict):
            raise SandboxError(f"POST /v1/predict answered {status}: {body}")
        return body

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; return the exit code."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            code = process.returncode
            logger.info("event=service_stopped port=%d exit_code=%s", self.port, code)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
