"""A lease lock that serialises alias moves across pipeline runs.

MLflow has no compare-and-set on aliases, so the gate takes this lock, then
re-reads `champion` under it and aborts if it moved since evaluation (see
docs/decisions/0201-lease-lock-for-alias-moves.md).

On S3 the lock is an object created with a conditional put (`If-None-Match:
*`): exactly one writer can create it. It carries an expiry; a holder that
died leaves a lease that others take over after it expires, again by a
conditional put (`If-Match` on the expired lease's ETag), so two waiters
cannot both take over. Release deletes the object only if it is still ours.
A local path gets the same semantics through `O_CREAT | O_EXCL` (for
single-machine use and tests without S3).
"""

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudguard_model.errors import GateError
from cloudguard_model.storage import is_s3, s3_client, split_s3

logger = logging.getLogger(__name__)

_POLL_S = 0.2


class LockError(GateError):
    """The lock could not be taken in time, or the lock store failed."""


@dataclass(frozen=True)
class Lease:
    """A held lock: who holds it and until when."""

    uri: str
    owner: str
    expires_at: float
    etag: str | None = None


def _body(owner: str, ttl_s: float) -> tuple[bytes, float]:
    expires_at = time.time() + ttl_s
    body = json.dumps({"owner": owner, "expires_at": expires_at}).encode()
    return body, expires_at


def _code(error: Exception) -> str:
    response: dict[str, Any] = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _try_s3(uri: str, owner: str, ttl_s: float) -> Lease | None:
    bucket, key = split_s3(uri)
    client = s3_client()
    body, expires_at = _body(owner, ttl_s)
    try:
        reply = client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        return Lease(uri, owner, expires_at, reply.get("ETag"))
    except Exception as error:
        if _code(error) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
            raise LockError(f"cannot create lock {uri}: {error}") from error

    # Held by someone: take it over only if their lease has expired.
    try:
        current = client.get_object(Bucket=bucket, Key=key)
        held = json.loads(current["Body"].read())
    except Exception as error:
        if _code(error) in {"NoSuchKey", "404"}:
            return None  # released meanwhile; the next poll creates it
        raise LockError(f"cannot read lock {uri}: {error}") from error
    if float(held.get("expires_at", 0)) > time.time():
        return None
    try:
        reply = client.put_object(
            Bucket=bucket, Key=key, Body=body, IfMatch=current["ETag"]
        )
    except Exception as error:
        if _code(error) in {"PreconditionFailed", "ConditionalRequestConflict"}:
            return None
        raise LockError(f"cannot take over lock {uri}: {error}") from error
    logger.warning(
        "event=lock_taken_over uri=%s expired_owner=%s", uri, held.get("owner")
    )
    return Lease(uri, owner, expires_at, reply.get("ETag"))


def _try_file(uri: str, owner: str, ttl_s: float) -> Lease | None:
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    body, expires_at = _body(owner, ttl_s)
    # Write aside, then hard-link into place: the lock appears atomically and
    # complete, and the link fails if a lock is already there.
    draft = path.with_name(f"{path.name}.{uuid.uuid4().hex}.new")
    draft.write_bytes(body)
    try:
        os.link(draft, path)
        return Lease(uri, owner, expires_at)
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)

    try:
        held_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None  # released meanwhile; the next poll creates it
    if float(json.loads(held_text).get("expires_at", 0)) > time.time():
        return None
    # Expired: move it aside; if what moved is not the lease we judged (a
    # fresh one replaced it meanwhile), put it back.
    stale = path.with_name(f"{path.name}.{uuid.uuid4().hex}.stale")
    try:
        path.rename(stale)
    except FileNotFoundError:
        return None
    if stale.read_text(encoding="utf-8") != held_text:
        with contextlib.suppress(FileExistsError):
            os.link(stale, path)
    else:
        logger.warning("event=lock_taken_over uri=%s", uri)
    stale.unlink(missing_ok=True)
    return None


def _release(lease: Lease) -> None:
    if is_s3(lease.uri):
        bucket, key = split_s3(lease.uri)
        try:
            s3_client().delete_object(Bucket=bucket, Key=key, IfMatch=lease.etag)
        except Exception as error:
            # Not ours any more (expired and taken over) or store down: the
            # lease expires by itself; say so and move on.
            logger.warning(
                "event=lock_release_failed uri=%s error=%s", lease.uri, error
            )
        return
    path = Path(lease.uri)
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if held.get("owner") == lease.owner:
        path.unlink(missing_ok=True)


@contextmanager
def lease_lock(
    uri: str, *, ttl_s: float = 120.0, wait_s: float = 30.0
) -> Iterator[Lease]:
    """Hold the lock at `uri` for the block; wait at most `wait_s` to get it."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    attempt = _try_s3 if is_s3(uri) else _try_file
    deadline = time.monotonic() + wait_s
    while True:
        lease = attempt(uri, owner, ttl_s)
        if lease is not None:
            break
        if time.monotonic() >= deadline:
            raise LockError(
                f"lock {uri} is held by another promotion; waited {wait_s:.0f}s. "
                "Retry later, or delete the lock object if its holder is gone"
            )
        time.sleep(_POLL_S)
    logger.info("event=lock_acquired uri=%s owner=%s", uri, owner)
    try:
        yield lease
    finally:
        _release(lease)
        logger.info("event=lock_released uri=%s owner=%s", uri, owner)
