"""Read and write data by URI: `s3://bucket/key` or a local path.

S3 access goes through one boto3 client with bounded timeouts and retries.
The endpoint comes from the standard `AWS_ENDPOINT_URL_S3` variable, which is
how the demo and the tests point at moto on 127.0.0.1.
"""

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from cloudguard_model.errors import CloudGuardModelError

_CHUNK = 1 << 20


class StorageError(CloudGuardModelError):
    """A URI is malformed or the object behind it cannot be read or written."""


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """Return (bucket, key) of an `s3://bucket/key` URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise StorageError(f"{uri!r} is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


@cache
def s3_client() -> Any:
    """The process-wide S3 client (thread-safe; bounded waits)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client("s3", config=config)


@contextmanager
def open_for_read(uri: str) -> Iterator[IO[bytes]]:
    """Open a local file or stream an S3 object without loading it whole."""
    if not is_s3(uri):
        path = Path(uri)
        if not path.is_file():
            raise StorageError(f"{uri}: no such file")
        with path.open("rb") as handle:
            yield handle
        return
    bucket, key = split_s3(uri)
    try:
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as error:
        raise StorageError(f"cannot read {uri}: {error}") from error
    try:
        yield body
    finally:
        body.close()


def read_bytes(uri: str) -> bytes:
    with open_for_read(uri) as handle:
        return handle.read()


def write_bytes(uri: str, data: bytes) -> None:
    if not is_s3(uri):
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    bucket, key = split_s3(uri)
    try:
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    except Exception as error:
        raise StorageError(f"cannot write {uri}: {error}") from error


def copy_to_local(uri: str, destination: Path) -> Path:
    """Stream `uri` to a local file (no whole copy in memory)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open_for_read(uri) as source, destination.open("wb") as target:
        shutil.copyfileobj(source, target, _CHUNK)
    return destination


def exists(uri: str) -> bool:
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(uri)
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code") in {
            "404",
            "NoSuchKey",
        }:
            return False
        raise StorageError(f"cannot check {uri}: {error}") from error
    return True


def sha256_of(uri: str) -> str:
    """Hex sha256 of the object's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open_for_read(uri) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
