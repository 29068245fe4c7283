"""Fixtures for the serving tests: one small trained model per session, a moto
S3 on 127.0.0.1, and a factory that runs `cloudguard-serve` as a real process.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

KEY = "test-gateway-key-0123456789"
"""Bearer key of the `plant-a` gateway in every serving test."""


@dataclass(frozen=True)
class Trained:
    tracking_uri: str
    version: str
    source: str
    run_id: str


def reading(**overrides: Any) -> dict[str, Any]:
    """A normal AI4I reading as JSON fields; override any of them."""
    base: dict[str, Any] = {
        "product_type": "M",
        "air_temperature_k": 298.1,
        "process_temperature_k": 308.6,
        "rotational_speed_rpm": 1551,
        "torque_nm": 42.8,
        "tool_wear_min": 0,
    }
    base.update(overrides)
    return base


def dataset_readings(
    dataset_path: Path, rows: int, skip: int = 0
) -> list[dict[str, Any]]:
    """Real AI4I rows as request readings."""
    frame = pd.read_csv(dataset_path).iloc[skip : skip + rows]
    return [
        {
            "product_type": row["Type"],
            "air_temperature_k": row["Air temperature [K]"],
            "process_temperature_k": row["Process temperature [K]"],
            "rotational_speed_rpm": int(row["Rotational speed [rpm]"]),
            "torque_nm": row["Torque [Nm]"],
            "tool_wear_min": int(row["Tool wear [min]"]),
            "machine_id": row["Product ID"],
        }
        for _, row in frame.iterrows()
    ]


def register_copy(trained: Trained) -> str:
    """A new registry version with the same artifacts (cheap, for alias moves)."""
    import mlflow
    from cloudguard_model import names
    from mlflow import MlflowClient

    # Registering from a logged model's `models:/m-...` source resolves it
    # through the process-wide tracking URI, not the client's.
    mlflow.set_tracking_uri(trained.tracking_uri)
    client = MlflowClient(trained.tracking_uri, registry_uri=trained.tracking_uri)
    model_id = trained.source.removeprefix("models:/")
    created = client.create_model_version(
        names.MODEL_NAME,
        trained.source,
        run_id=trained.run_id,
        model_id=model_id if trained.source.startswith("models:/") else None,
    )
    return str(created.version)


def set_alias(trained: Trained, alias: str, version: str) -> None:
    from cloudguard_model import names
    from mlflow import MlflowClient

    client = MlflowClient(trained.tracking_uri, registry_uri=trained.tracking_uri)
    client.set_registered_model_alias(names.MODEL_NAME, alias, version)


def train_small(dataset_path: Path, workdir: Path, tracking_uri: str) -> Trained:
    """Train a small model with the real trainer on a slice of the data set."""
    from cloudguard_model import names
    from cloudguard_model.config import TrainConfig
    from mlflow import MlflowClient

    data = workdir / "slice.csv"
    pd.read_csv(dataset_path).head(4000).to_csv(data, index=False)
    config = TrainConfig(
        num_boost_round=60, early_stopping_rounds=1000, mode_boost_round=20, max_bin=256
    )
    # Keep run artifacts in the test's directory, not in ./mlruns of the repo.
    MlflowClient(tracking_uri).create_experiment(
        names.EXPERIMENT_NAME, artifact_location=(workdir / "artifacts").as_uri()
    )
    with warnings.catch_warnings():
        # MLflow warns about the pyfunc's `Any` type hints when logging; that is
        # the trainer's signature, not what these tests check.
        warnings.filterwarnings("ignore", message=".*inferred as AnyType.*")
        from cloudguard_model.training import train_model

        result = train_model(str(data), config=config, tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    found = client.get_model_version(names.MODEL_NAME, result.version)
    client.set_registered_model_alias(names.MODEL_NAME, "champion", result.version)
    return Trained(tracking_uri, result.version, found.source, result.run_id)


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Holds mlflow.db and artifacts/, the layout tests/support/mlflow_server uses."""
    return tmp_path_factory.mktemp("serving-registry")


@pytest.fixture(scope="session")
def trained(registry_dir: Path, dataset_path: Path) -> Trained:
    """One model trained by `train_model`, registered as version 1 = champion."""
    return train_small(
        dataset_path, registry_dir, f"sqlite:///{registry_dir / 'mlflow.db'}"
    )


@dataclass
class Outcome:
    started: float
    ended: float
    status: int
    version: str | None
    request_id: str | None
    readings: int


class Load:
    """Steady, bounded load on one of our 127.0.0.1 servers from a few threads."""

    def __init__(
        self,
        url: str,
        rows: list[dict[str, Any]],
        *,
        threads: int = 4,
        pause: float = 0.005,
    ) -> None:
        self.url = url
        self.rows = rows
        self.threads = threads
        self.pause = pause
        self.outcomes: list[Outcome] = []
        self.errors: list[str] = []
        self.refused = 0
        """Connections refused (never accepted), e.g. after SIGTERM."""
        self.unanswered: list[str] = []
        """X-Request-IDs of requests whose connection closed without an answer."""
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> "Load":
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def _run(self, index: int) -> None:
        position = index
        sent = 0
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                size = 1 + position % 3
                batch = [
                    self.rows[(position + k) % len(self.rows)] for k in range(size)
                ]
                position += self.threads
                started = time.monotonic()
                sent += 1
                request_id = f"load-{index}-{sent}"
                headers = {"Authorization": f"Bearer {KEY}", "X-Request-ID": request_id}
                try:
                    answer = client.post(
                        "/v1/predict", json={"readings": batch}, headers=headers
                    )
                except httpx.ConnectError:
                    self.refused += 1
                    time.sleep(0.05)
                    continue
                except httpx.RemoteProtocolError as error:
                    self.unanswered.append(request_id)
                    self.errors.append(f"{type(error).__name__}: {error}")
                    continue
                except httpx.HTTPError as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                    continue
                body = answer.json() if answer.status_code == 200 else {}
                self.outcomes.append(
                    Outcome(
                        started,
                        time.monotonic(),
                        answer.status_code,
                        body.get("model_version"),
                        body.get("request_id"),
                        size,
                    )
                )
                time.sleep(self.pause)


@pytest.fixture(scope="session")
def key_hash() -> str:
    from cloudguard_serving.auth import hash_key

    return hash_key(KEY)


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with the inference bucket created."""
    from cloudguard_model import names, storage
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = os.environ.get(names.ENV_S3_ENDPOINT)
    os.environ[names.ENV_S3_ENDPOINT] = endpoint
    storage.s3_client.cache_clear()
    storage.s3_client().create_bucket(Bucket=names.DEFAULT_INFERENCE_BUCKET)
    yield endpoint
    server.stop()
    if previous is None:
        os.environ.pop(names.ENV_S3_ENDPOINT, None)
    else:
        os.environ[names.ENV_S3_ENDPOINT] = previous
    storage.s3_client.cache_clear()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


ServeFactory = Callable[..., Served]


def start_server(
    workdir: Path, key_hash: str, tracking_uri: str, *, ready: bool = True, **env: Any
) -> Served:
    """Start `cloudguard-serve` (granian) on 127.0.0.1 and wait for readiness."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    environ = dict(os.environ)
    environ.update(
        {
            "CLOUDGUARD_PORT": str(port),
            "CLOUDGUARD_HOST": "127.0.0.1",
            "CLOUDGUARD_API_KEYS": f"plant-a={key_hash}",
            "CLOUDGUARD_SPOOL_DIR": str(workdir / f"spool-{port}"),
            "MLFLOW_TRACKING_URI": tracking_uri,
        }
    )
    environ.update({name: str(value) for name, value in env.items()})
    entry = Path(sys.executable).with_name("cloudguard-serve")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(entry)], env=environ, stdout=sink, stderr=subprocess.STDOUT
        )
    served = Served(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{served.url}/health/ready", timeout=2)
            if answer.status_code == 200 or (not ready and answer.status_code == 503):
                return served
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server not ready in 120 s:\n{log.read_text()}")


@pytest.fixture
def serve(tmp_path: Path, key_hash: str) -> Iterator[ServeFactory]:
    """Factory for servers that are killed at teardown if a test left them up."""
    started: list[Served] = []

    def start(tracking_uri: str, *, ready: bool = True, **env: Any) -> Served:
        served = start_server(tmp_path, key_hash, tracking_uri, ready=ready, **env)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(timeout=10)
