"""A real MLflow tracking server for tests, on 127.0.0.1 only.

Start one per test module, not per test: a server takes a few seconds to come
up. Two backends:

- SQLite: `mlflow_server(workdir)`.
- PostgreSQL: `mlflow_server(workdir, backend="postgresql")` first runs a
  throwaway cluster with `initdb`/`pg_ctl` (binaries on PATH) listening on
  127.0.0.1 and a private unix socket directory. PostgreSQL refuses to run as
  root, so under root the cluster runs as the `postgres` system user through
  `runuser`, in a directory under the system temp dir that user can reach.

Usage in a test module::

    @pytest.fixture(scope="module")
    def tracking(tmp_path_factory):
        with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
            yield server

    def test_something(tracking, monkeypatch):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)

`server.kill()` stops the tracking server abruptly (SIGKILL to its whole
process group), for tests of "the registry went down"; `server.restart()`
brings it back on the same port and store.

The child inherits the test environment, so the network guard from
tests/conftest.py (PYTHONPATH sitecustomize) is installed in it too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Backend = Literal["sqlite", "postgresql"]

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 10.0
_PG_USER = "postgres"


class MlflowServerError(RuntimeError):
    """The test tracking server or its database could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


def postgres_available() -> bool:
    """True when initdb and pg_ctl are on PATH (and, under root, runuser works)."""
    if not (shutil.which("initdb") and shutil.which("pg_ctl")):
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam(_PG_USER)
    except KeyError:
        return False
    return shutil.which("runuser") is not None


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1."""

    data_dir: Path
    port: int
    log_path: Path
    as_user: str | None = None

    @property
    def uri(self) -> str:
        """SQLAlchemy URI of the `mlflow` database (trust auth, loopback)."""
        return f"postgresql+psycopg2://{_PG_USER}@{_HOST}:{self.port}/mlflow"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False
        )

    def start(self) -> None:
        socket_dir = self.data_dir.parent / "socket"
        options = f"-h {_HOST} -p {self.port} -k {socket_dir} -c fsync=off"
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        if result.returncode != 0:
            raise MlflowServerError(
                f"pg_ctl start failed ({result.returncode}): {result.stderr}"
                f"\n{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        if self.as_user:
            # The cluster lives outside pytest's tmp dir (see start_postgres).
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres(workdir: Path) -> PostgresCluster:
    """initdb a cluster, start it on a free loopback port, create `mlflow`."""
    as_user = _PG_USER if os.geteuid() == 0 else None
    if as_user:
        # pytest's tmp dirs are private to root; the postgres user cannot enter.
        base = Path(tempfile.mkdtemp(prefix="cloudguard-pg-"))
        entry = pwd.getpwnam(as_user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    else:
        base = workdir / "postgres"
        base.mkdir(parents=True, exist_ok=True)
    socket_dir = base / "socket"
    cluster = PostgresCluster(
        data_dir=base / "data",
        port=free_port(),
        log_path=base / "postgres.log",
        as_user=as_user,
    )
    cluster._run("mkdir", "-p", str(socket_dir))

    result = cluster._run(
        "initdb",
        "-D",
        str(cluster.data_dir),
        "-U",
        _PG_USER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    if result.returncode != 0:
        cluster.stop()
        raise MlflowServerError(f"initdb failed: {result.stderr}")
    try:
        cluster.start()
    except MlflowServerError:
        cluster.stop()
        raise

    import psycopg2

    connection = psycopg2.connect(
        host=_HOST, port=cluster.port, user=_PG_USER, dbname="postgres"
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
    finally:
        connection.close()
    return cluster


@dataclass
class MlflowServer:
    """A running `mlflow server` process and where it keeps its state."""

    url: str
    port: int
    backend_uri: str
    artifacts_dir: Path
    log_path: Path
    workers: int = 1
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    postgres: PostgresCluster | None = field(default=None, repr=False)

    def start(self, timeout: float = _START_TIMEOUT_S) -> None:
        """Launch the server and wait until `/health` answers."""
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            _HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--backend-store-uri",
            self.backend_uri,
            "--artifacts-destination",
            str(self.artifacts_dir),
            "--serve-artifacts",
        ]
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.artifacts_dir.parent,
                start_new_session=True,
            )
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise MlflowServerError(
                    f"mlflow server exited with {self.process.returncode}:\n"
                    f"{_tail(self.log_path)}"
                )
            if self.healthy():
                return
            time.sleep(0.25)
        self.kill()
        raise MlflowServerError(
            f"mlflow server on {self.url} not healthy after {timeout:.0f}s:\n"
            f"{_tail(self.log_path)}"
        )

    def healthy(self) -> bool:
        """True when `/health` answers 200 right now."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _signal_group(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=_STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the server cleanly (SIGTERM, then SIGKILL after a grace period)."""
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, timeout: float = _START_TIMEOUT_S) -> None:
        """Stop (if running) and start again on the same port and store."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the server and, when there is one, its PostgreSQL cluster."""
        self.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_mlflow_server(
    workdir: Path, backend: Backend = "sqlite", *, workers: int = 1
) -> MlflowServer:
    """Start a tracking server (and its database) with state under `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    artifacts = workdir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    postgres = None
    if backend == "sqlite":
        backend_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    elif backend == "postgresql":
        if not postgres_available():
            raise MlflowServerError(
                "PostgreSQL backend asked for but initdb/pg_ctl are not on PATH "
                "(or running as root without a `postgres` user and runuser)"
            )
        postgres = start_postgres(workdir)
        backend_uri = postgres.uri
    else:
        raise MlflowServerError(
            f"backend {backend!r} is not supported; use 'sqlite' or 'postgresql'"
        )
    port = free_port()
    server = MlflowServer(
        url=f"http://{_HOST}:{port}",
        port=port,
        backend_uri=backend_uri,
        artifacts_dir=artifacts,
        log_path=workdir / "mlflow-server.log",
        workers=workers,
        postgres=postgres,
    )
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


@contextlib.contextmanager
def mlflow_server(
    workdir: Path, backend: Backend = "sqlite", *, workers: int = 1
) -> Iterator[MlflowServer]:
    """A tracking server for the duration of the block; stopped on exit."""
    server = start_mlflow_server(workdir, backend, workers=workers)
    try:
        yield server
    finally:
        server.close()


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])
