"""Serving benchmark: our service against `mlflow models serve`, a FastAPI +
pandas per-request service, and the in-process floor, on 127.0.0.1.

    uv run --frozen python bench/serving.py [--tracking-uri URI] [--seconds 10]
        [--concurrency 32]

Every target scores the same registered model with one reading per request at
a fixed concurrency, driven by a small keep-alive HTTP/1.1 client in this
process. Without --tracking-uri a 300-tree model is trained into a temporary
SQLite registry first. It prints each figure and the ratios; the machine is
shared, so compare ratios from one run rather than absolute numbers.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}
BENCH_KEY = "bench-gateway-key-not-a-secret"
FIELDS = {
    "product_type": "Type",
    "air_temperature_k": "Air temperature [K]",
    "process_temperature_k": "Process temperature [K]",
    "rotational_speed_rpm": "Rotational speed [rpm]",
    "torque_nm": "Torque [Nm]",
    "tool_wear_min": "Tool wear [min]",
}


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def p50(self) -> float:
        if not len(self.latencies_ms):
            return float("nan")
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def p99(self) -> float:
        if not len(self.latencies_ms):
            return float("nan")
        return float(np.percentile(self.latencies_ms, 99))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train(workdir: Path) -> str:
    """Train a 300-tree model with the real trainer; return its tracking URI."""
    from cloudguard_model import names
    from cloudguard_model.config import TrainConfig
    from cloudguard_model.datasets import DATASET_PATH
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment(
        names.EXPERIMENT_NAME, artifact_location=(workdir / "artifacts").as_uri()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cloudguard_model.training import train_model

        config = TrainConfig(num_boost_round=300, early_stopping_rounds=10**6)
        result = train_model(str(DATASET_PATH), config=config, tracking_uri=uri)
    client.set_registered_model_alias(names.MODEL_NAME, "champion", result.version)
    print(f"trained version {result.version} (300 trees) into {uri}", flush=True)
    return uri


def readings(count: int) -> list[dict[str, Any]]:
    import pandas as pd
    from cloudguard_model.datasets import DATASET_PATH

    frame = pd.read_csv(DATASET_PATH).head(count)
    # Keep each column's own JSON type (speed and wear are integers in the
    # data set and in the model's signature).
    return [
        {ours: row[theirs] for ours, theirs in FIELDS.items()}
        for row in frame[list(FIELDS.values())].to_dict(orient="records")
    ]


# --- a small keep-alive HTTP/1.1 load generator -----------------------------


def _request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _drive(
    port: int,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        position = index
        try:
            while time.perf_counter() < stop_at:
                payload = _request(port, path, bodies[position % len(bodies)], headers)
                position += concurrency
                started = time.perf_counter()
                writer.write(payload)
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                if status != 200:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000.0)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


def load(
    name: str,
    port: int,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
) -> Result:
    # Warm up connections, caches and the server's first batches.
    asyncio.run(_drive(port, path, bodies, headers, concurrency, 1.0))
    latencies, errors, elapsed = asyncio.run(
        _drive(port, path, bodies, headers, concurrency, seconds)
    )
    return Result(name, len(latencies), errors, elapsed, np.array(latencies))


# --- the targets --------------------------------------------------------------


def wait_http(
    port: int, path: str, process: subprocess.Popen[bytes], log: Path
) -> None:
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on {port} not up in 180 s:\n{log.read_text()[-3000:]}")


def start(
    argv: list[str], env: dict[str, str], log: Path, port: int, health: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=BENCH_DIR,
            start_new_session=True,
        )
    wait_http(port, health, process, log)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def floor(uri: str, rows: list[dict[str, Any]]) -> tuple[Result, float]:
    """In-process: single-row `score` calls, and rows/s of a 256-row batch."""
    import mlflow
    import xgboost

    xgboost.set_config(nthread=1)  # as the service runs it (score_threads=1)
    mlflow.set_tracking_uri(uri)
    scorer = mlflow.pyfunc.load_model(
        "models:/cloudguard-failure@champion"
    ).unwrap_python_model()
    matrix = np.array([[r[f] for f in list(FIELDS)[1:]] for r in rows])
    types = [r["product_type"] for r in rows]
    latencies = []
    started = time.perf_counter()
    for i in range(3000):
        one = time.perf_counter()
        scorer.score(types[i % len(types) : i % len(types) + 1], matrix[i % len(types)])
        latencies.append((time.perf_counter() - one) * 1000.0)
    elapsed = time.perf_counter() - started
    batch_started = time.perf_counter()
    for _ in range(20):
        scorer.score(types[:256], matrix[:256])
    batched = 20 * 256 / (time.perf_counter() - batch_started)
    return Result("in-process floor", 3000, 0, elapsed, np.array(latencies)), batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    os.environ.update(SAFE_ENV)
    workdir = Path(tempfile.mkdtemp(prefix="cloudguard-bench-"))
    uri = args.tracking_uri or train(workdir)
    env = {**os.environ, **SAFE_ENV, "MLFLOW_TRACKING_URI": uri}
    # `mlflow models serve` execs `uvicorn` by name: put this venv first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    # One OpenMP thread per XGBoost call everywhere (our service does the same
    # through CLOUDGUARD_SCORE_THREADS=1), so the baselines do not lose to
    # thread contention on shared cores: the comparison is framework and batching.
    env["OMP_NUM_THREADS"] = "1"
    rows = readings(1000)
    python = sys.executable
    results: list[Result] = []
    print(
        f"concurrency {args.concurrency}, {args.seconds:.0f} s per target, "
        f"1 reading per request, {os.cpu_count()} cores (shared)",
        flush=True,
    )

    from cloudguard_serving.auth import hash_key

    port = free_port()
    ours_env = {
        **env,
        "CLOUDGUARD_PORT": str(port),
        "CLOUDGUARD_API_KEYS": f"bench={hash_key(BENCH_KEY)}",
        "CLOUDGUARD_INFERENCE_DIR": str(workdir / "inference-log"),
        "CLOUDGUARD_SPOOL_DIR": str(workdir / "spool"),
        "CLOUDGUARD_LOG_LEVEL": "WARNING",
    }
    entry = str(Path(python).with_name("cloudguard-serve"))
    server = start([entry], ours_env, workdir / "ours.log", port, "/health/ready")
    auth = {"Authorization": f"Bearer {BENCH_KEY}"}
    try:
        for explain in (False, True):
            bodies = [
                json.dumps({"readings": [r], "explain": explain}).encode() for r in rows
            ]
            name = "cloudguard (granian, batching)" + (" +explain" if explain else "")
            results.append(
                load(
                    name,
                    port,
                    "/v1/predict",
                    bodies,
                    auth,
                    args.concurrency,
                    args.seconds,
                )
            )
            print(f"  measured {name}", flush=True)
    finally:
        stop(server)

    port = free_port()
    mlflow_argv = [
        python, "-m", "mlflow", "models", "serve",
        "-m", "models:/cloudguard-failure@champion",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    server = start(mlflow_argv, env, workdir / "mlflow.log", port, "/ping")
    columns = [FIELDS[name] for name in FIELDS]
    bodies = [
        json.dumps(
            {"dataframe_split": {"columns": columns, "data": [list(r.values())]}}
        ).encode()
        for r in rows
    ]
    try:
        results.append(
            load("mlflow models serve", port, "/invocations", bodies, {},
                 args.concurrency, args.seconds)
        )  # fmt: skip
        print("  measured mlflow models serve", flush=True)
    finally:
        stop(server)

    port = free_port()
    baseline_env = {**env, "BASELINE_MODEL_URI": "models:/cloudguard-failure@champion"}
    baseline_argv = [
        python, "-m", "uvicorn", "_fastapi_baseline:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    server = start(baseline_argv, baseline_env, workdir / "fastapi.log", port, "/ping")
    bodies = [json.dumps({FIELDS[k]: v for k, v in r.items()}).encode() for r in rows]
    try:
        results.append(
            load("fastapi + pandas per request", port, "/predict", bodies, {},
                 args.concurrency, args.seconds)
        )  # fmt: skip
        print("  measured fastapi + pandas", flush=True)
    finally:
        stop(server)

    floor_result, batched = floor(uri, rows)
    results.append(floor_result)
    report(results, batched)


def report(results: list[Result], batched: float) -> None:
    print()
    print(f"{'target':34} {'requests':>9} {'errors':>6} {'req/s':>9} "
          f"{'p50 ms':>8} {'p99 ms':>8}")  # fmt: skip
    for r in results:
        print(f"{r.name:34} {r.requests:9d} {r.errors:6d} {r.throughput:9.0f} "
              f"{r.p50:8.2f} {r.p99:8.2f}")  # fmt: skip
    print(f"{'in-process, 256-row batch':34} {'':9} {'':6} {batched:9.0f} rows/s")
    by_name = {r.name: r for r in results}
    ours = by_name["cloudguard (granian, batching)"]
    for other in ("mlflow models serve", "fastapi + pandas per request"):
        theirs = by_name[other]
        ratio = ours.throughput / theirs.throughput
        print(
            f"cloudguard vs {other}: throughput x{ratio:.1f}"
            f", p99 {ours.p99:.2f} vs {theirs.p99:.2f} ms"
            f" (x{theirs.p99 / ours.p99:.1f} lower)"
        )
    floor_result = by_name["in-process floor"]
    print(
        f"cloudguard reaches {ours.throughput / floor_result.throughput:.2f}x the "
        "single-row in-process rate"
    )
    total_errors = sum(r.errors for r in results)
    print(f"errors: {total_errors}")


if __name__ == "__main__":
    main()
