"""The embedded stand-ins: local only, fake credentials, nothing left behind."""

import os
from pathlib import Path

import boto3
import pytest
from cloudguard_pipelines.errors import SandboxError
from cloudguard_pipelines.sandbox import BUCKETS, Sandbox, prepare_workdir


def test_sandbox_serves_s3_on_loopback_with_fake_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("AWS_PROFILE", "production")

    with Sandbox(tmp_path, prepare_tracking=False) as sandbox:
        env = sandbox.env()
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        buckets = {b["Name"] for b in client.list_buckets()["Buckets"]}

    assert env["AWS_ENDPOINT_URL_S3"].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert "HTTPS_PROXY" not in env
    assert "AWS_PROFILE" not in env
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert buckets == set(BUCKETS)


def test_stopping_the_sandbox_restores_this_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    with Sandbox(tmp_path, prepare_tracking=False):
        assert "AWS_PROFILE" not in os.environ
        assert os.environ["MLFLOW_TRACKING_URI"].startswith("sqlite:///")

    assert os.environ["AWS_PROFILE"] == "someone"
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "AWS_ENDPOINT_URL_S3" not in os.environ


def test_a_fresh_workdir_clears_only_a_directory_we_made(tmp_path: Path) -> None:
    ours = prepare_workdir(tmp_path / "ours", fresh=True)
    (ours / "old.txt").write_text("stale")
    prepare_workdir(ours, fresh=True)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("precious")

    assert not (ours / "old.txt").exists()
    with pytest.raises(SandboxError, match="not made by cloudguard"):
        prepare_workdir(theirs, fresh=True)
    assert (theirs / "thesis.tex").read_text() == "precious"
