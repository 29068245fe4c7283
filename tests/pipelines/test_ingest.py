"""The ingest step: newest object, content-addressed snapshot, frozen evaluation set."""

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudguard_model import storage
from cloudguard_pipelines.errors import IngestError
from cloudguard_pipelines.ingest import ingest, newest_object
from moto import mock_aws

RAW = "cloudguard-raw-data"
ARTIFACTS = "cloudguard-artifacts"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """In-process moto S3 with both buckets; storage's cached client reset."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    storage.s3_client.cache_clear()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (RAW, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        yield client
    storage.s3_client.cache_clear()


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Path:
    """The first 1,500 readings of the real data set."""
    lines = dataset_path.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path_factory.mktemp("data") / "first-1500.csv"
    path.write_text("".join(lines[:1501]), encoding="utf-8")
    return path


def test_snapshot_is_named_by_the_hash_of_its_bytes(s3: Any, small_csv: Path) -> None:
    s3.upload_file(str(small_csv), RAW, "incoming/a.csv")

    result = ingest(
        f"s3://{RAW}/incoming/a.csv",
        f"s3://{RAW}/snapshots/",
        f"s3://{ARTIFACTS}/evaluation/frozen.csv",
    )

    digest = hashlib.sha256(small_csv.read_bytes()).hexdigest()
    assert result.sha256 == digest
    assert result.snapshot_uri == f"s3://{RAW}/snapshots/{digest}.csv"
    assert storage.read_bytes(result.snapshot_uri) == small_csv.read_bytes()
    assert result.rows == 1500
    assert result.created is True


def test_ingesting_the_same_bytes_again_writes_nothing_new(
    s3: Any, small_csv: Path
) -> None:
    s3.upload_file(str(small_csv), RAW, "incoming/a.csv")
    args = (
        f"s3://{RAW}/incoming/",
        f"s3://{RAW}/snapshots/",
        f"s3://{ARTIFACTS}/e.csv",
    )

    first = ingest(*args)
    second = ingest(*args)

    assert second.snapshot_uri == first.snapshot_uri
    assert second.created is False
    assert second.evaluation_created is False
    assert second.evaluation_sha256 == first.evaluation_sha256


def test_a_prefix_resolves_to_its_newest_object(s3: Any, small_csv: Path) -> None:
    client = s3
    client.put_object(Bucket=RAW, Key="incoming/old.csv", Body=b"UDI\n1\n")
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    client.upload_file(str(small_csv), RAW, "incoming/new.csv")

    assert newest_object(f"s3://{RAW}/incoming/") == f"s3://{RAW}/incoming/new.csv"


def test_the_evaluation_set_is_frozen_from_the_first_snapshot_only(
    s3: Any, small_csv: Path, tmp_path: Path
) -> None:
    evaluation = f"s3://{ARTIFACTS}/evaluation/frozen.csv"
    s3.upload_file(str(small_csv), RAW, "incoming/a.csv")
    first = ingest(f"s3://{RAW}/incoming/a.csv", f"s3://{RAW}/snapshots/", evaluation)
    frozen = storage.read_bytes(evaluation)

    grown = tmp_path / "grown.csv"
    extra = small_csv.read_text(encoding="utf-8").splitlines(keepends=True)[1:100]
    grown.write_text(small_csv.read_text(encoding="utf-8") + "".join(extra))
    s3.upload_file(str(grown), RAW, "incoming/b.csv")
    second = ingest(f"s3://{RAW}/incoming/b.csv", f"s3://{RAW}/snapshots/", evaluation)

    assert first.evaluation_created is True
    assert second.evaluation_created is False
    assert second.sha256 != first.sha256
    assert storage.read_bytes(evaluation) == frozen
    assert second.evaluation_sha256 == hashlib.sha256(frozen).hexdigest()


def test_an_empty_prefix_names_where_to_upload(s3: Any) -> None:
    with pytest.raises(IngestError, match="upload the raw CSV"):
        ingest(f"s3://{RAW}/incoming/", f"s3://{RAW}/snapshots/")


def test_local_directories_work_like_prefixes(small_csv: Path, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "data.csv").write_bytes(small_csv.read_bytes())

    result = ingest(f"{incoming}/", f"{tmp_path / 'snapshots'}/")

    assert Path(result.snapshot_uri).read_bytes() == small_csv.read_bytes()
    assert result.evaluation_uri == f"{tmp_path / 'snapshots'}/evaluation.csv"
    assert Path(result.evaluation_uri).is_file()


def test_ingest_command_prints_the_agreed_json(small_csv: Path, tmp_path: Path) -> None:
    from cloudguard_cli.main import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        app,
        [
            "ingest",
            "--source",
            str(small_csv),
            "--snapshot-prefix",
            f"{tmp_path}/snap/",
            "--evaluation-uri",
            str(tmp_path / "eval.csv"),
            "--json",
        ],
        env=dict(os.environ),
    )

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"snapshot_uri", "sha256", "rows", "evaluation_uri"} <= set(payload)
    assert payload["rows"] == 1500
