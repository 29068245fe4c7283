"""Session-wide safety for every CloudGuard test.

- Fake AWS credentials and no instance metadata, before anything imports boto.
- A network guard in this process and in every Python child: anything that
  tries to leave loopback fails the test session.
- MLflow telemetry off; no tracking URI inherited from the user's shell.
"""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_GUARD_DIR = Path(__file__).parent / "support" / "netguard"

_SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "CLOUDGUARD_NETGUARD": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
for _name in (
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
):
    os.environ.pop(_name, None)
os.environ.update(_SAFE_ENV)
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(_GUARD_DIR), os.environ.get("PYTHONPATH")])
)
sys.path.insert(0, str(_GUARD_DIR))
# Test helpers shared across areas: `from mlflow_server import mlflow_server`.
sys.path.insert(0, str(Path(__file__).parent / "support"))

import cloudguard_netguard  # noqa: E402

cloudguard_netguard.install()


@pytest.fixture(scope="session", autouse=True)
def _netguard_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Collect refusals from child processes; fail the session if any."""
    log = tmp_path_factory.getbasetemp() / "netguard.log"
    log.touch()
    os.environ["CLOUDGUARD_NETGUARD_LOG"] = str(log)
    yield log
    refused = log.read_text(encoding="utf-8").strip()
    assert not refused, f"a test reached beyond loopback:\n{refused}"


@pytest.fixture(scope="session")
def dataset_path() -> Path:
    """The AI4I 2020 copy that ships inside cloudguard_model."""
    from cloudguard_model.datasets import DATASET_PATH

    return DATASET_PATH


@pytest.fixture(scope="module", autouse=True)
def _forget_mlflow_uris() -> Iterator[None]:
    """Reset MLflow's process-wide tracking and registry URIs after a module.

    MLflow keeps them in module globals; a module that sets them (or points
    them at a server it then stops) must not decide where the next module's
    runs go.
    """
    yield
    # set_tracking_uri and set_registry_uri also export these for children.
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    if "mlflow" in sys.modules:
        import mlflow.tracking._model_registry.utils as registry_utils
        import mlflow.tracking._tracking_service.utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None
