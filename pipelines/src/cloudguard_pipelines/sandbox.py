"""Embedded stand-ins for the cloud: moto's S3 server and a SQLite MLflow store.

Everything binds 127.0.0.1, uses fake credentials and lives under one working
directory, so a local run or the demo needs no cloud and no setup. Child
processes get an environment built here (`Sandbox.env`) that points boto3
and MLflow at the stand-ins and at nothing else.
"""

import logging
import os
import secrets
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from cloudguard_model import names

from cloudguard_pipelines.errors import SandboxError

logger = logging.getLogger(__name__)

SAFE_ENV: Final = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
"""Fake credentials and the switches that keep SDKs from phoning out."""

_INHERITED_AND_DROPPED: Final = (
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_TOKEN",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

BUCKETS: Final = (
    names.DEFAULT_RAW_BUCKET,
    names.DEFAULT_ARTIFACT_BUCKET,
    names.DEFAULT_INFERENCE_BUCKET,
)

MARKER: Final = ".cloudguard-workdir"
"""File that marks a directory as ours, so it may be cleared and reused."""


def prepare_workdir(workdir: Path, *, fresh: bool) -> Path:
    """Create the working directory; with fresh, empty a previous one of ours."""
    workdir = workdir.resolve()
    if fresh and workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).is_file():
            raise SandboxError(
                f"{workdir} exists and was not made by cloudguard; pick another "
                "--workdir or remove it"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).touch()
    return workdir


class Sandbox:
    """moto S3 on 127.0.0.1 plus a SQLite tracking store under `workdir`."""

    def __init__(self, workdir: Path, *, prepare_tracking: bool = True) -> None:
        """With prepare_tracking False the SQLite store is left to the first step
        that uses it (its first use takes seconds: schema migrations)."""
        self.workdir = workdir.resolve()
        self.prepare_tracking = prepare_tracking
        self.tracking_uri = f"sqlite:///{self.workdir / 'mlflow.db'}"
        self.artifact_root = self.workdir / "mlartifacts"
        self.endpoint = ""
        self._server: Any = None
        self._s3: Any = None
        self._saved_env: dict[str, str | None] = {}

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
        """Start S3, create the buckets, create the tracking store."""
        # This process too: fake credentials, no metadata service, no proxies,
        # and no real endpoint or tracking server inherited from the shell.
        # `stop` puts the previous values back.
        touched = {*_INHERITED_AND_DROPPED, *SAFE_ENV, names.ENV_TRACKING_URI}
        self._saved_env = {name: os.environ.get(name) for name in touched}
        for name in _INHERITED_AND_DROPPED:
            os.environ.pop(name, None)
        os.environ.update(SAFE_ENV)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_s3()
        os.environ["AWS_ENDPOINT_URL_S3"] = self.endpoint
        os.environ[names.ENV_TRACKING_URI] = self.tracking_uri
        self._create_buckets()
        if self.prepare_tracking:
            self._create_experiment()

    def stop(self) -> None:
        """Stop the S3 server and restore the environment (the store stays on disk)."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            logger.info("event=s3_stopped endpoint=%s", self.endpoint)
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a child: ours minus cloud settings, plus the stand-ins."""
        env = dict(os.environ if base is None else base)
        for name in _INHERITED_AND_DROPPED:
            env.pop(name, None)
        env.update(SAFE_ENV)
        env["AWS_ENDPOINT_URL_S3"] = self.endpoint
        env[names.ENV_TRACKING_URI] = self.tracking_uri
        env[names.ENV_RAW_BUCKET] = names.DEFAULT_RAW_BUCKET
        env[names.ENV_ARTIFACT_BUCKET] = names.DEFAULT_ARTIFACT_BUCKET
        env[names.ENV_INFERENCE_BUCKET] = names.DEFAULT_INFERENCE_BUCKET
        return env

    def upload(self, path: Path, uri: str) -> None:
        """Put a local file into the embedded S3."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self._client().upload_file(str(path), bucket, key)
        logger.info("event=uploaded path=%s uri=%s", path, uri)

    def params(
        self, run_key: str, *, data_uri: str, reload_url: str = ""
    ) -> dict[str, str]:
        """Pipeline parameters that point at this sandbox."""
        raw, artifacts = names.DEFAULT_RAW_BUCKET, names.DEFAULT_ARTIFACT_BUCKET
        return {
            "data-uri": data_uri,
            "snapshot-prefix": f"s3://{raw}/snapshots/",
            "evaluation-uri": f"s3://{artifacts}/evaluation/ai4i-frozen.csv",
            "artifact-bucket": artifacts,
            "tracking-uri": self.tracking_uri,
            "serving-reload-url": reload_url,
            "run-key": run_key,
        }

    def _start_s3(self) -> None:
        from moto.server import ThreadedMotoServer

        # The server's per-request access log is noise on a terminal.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        try:
            server.start()
        except OSError as error:
            raise SandboxError(
                f"cannot start the embedded S3 on 127.0.0.1: {error}"
            ) from error
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint = f"http://{host}:{port}"
        logger.info("event=s3_started endpoint=%s", self.endpoint)

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            self._s3 = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id=SAFE_ENV["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=SAFE_ENV["AWS_SECRET_ACCESS_KEY"],
                region_name=SAFE_ENV["AWS_DEFAULT_REGION"],
                config=Config(connect_timeout=5, read_timeout=30, proxies={}),
            )
        return self._s3

    def _create_buckets(self) -> None:
        for bucket in BUCKETS:
            self._client().create_bucket(Bucket=bucket)

    def _create_experiment(self) -> None:
        """Create the experiment with its artifacts under the working directory.

        Without this MLflow would put artifacts under the current directory.
        """
        from mlflow.tracking import MlflowClient

        # Schema migrations of a new store log at INFO; the terminal is the CLI's.
        for noisy in ("mlflow", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.artifact_root.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(tracking_uri=self.tracking_uri)
        if client.get_experiment_by_name(names.EXPERIMENT_NAME) is None:
            client.create_experiment(
                names.EXPERIMENT_NAME, artifact_location=self.artifact_root.as_uri()
            )
        logger.info(
            "event=tracking_ready uri=%s artifacts=%s",
            self.tracking_uri,
            self.artifact_root,
        )


def new_api_key() -> str:
    """A random API key for a service this machine starts."""
    return secrets.token_urlsafe(24)
