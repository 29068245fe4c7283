"""The lease lock that serialises alias moves: on S3 (moto) and on a file."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudguard_model import storage
from cloudguard_model.locking import LockError, lease_lock

BUCKET = "cloudguard-artifacts"


@pytest.fixture
def s3_lock_uri() -> Iterator[str]:
    from moto import mock_aws

    with mock_aws():
        storage.s3_client.cache_clear()
        storage.s3_client().create_bucket(Bucket=BUCKET)
        yield f"s3://{BUCKET}/locks/promotion.lock"
    storage.s3_client.cache_clear()


@pytest.fixture(params=["s3", "file"])
def lock_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "s3":
        return str(request.getfixturevalue("s3_lock_uri"))
    return str(tmp_path / "promotion.lock")


def test_second_holder_waits_and_gives_up_while_the_lock_is_held(
    lock_uri: str,
) -> None:
    with lease_lock(lock_uri, ttl_s=60):
        started = time.monotonic()
        with (
            pytest.raises(LockError, match="held by another promotion"),
            lease_lock(lock_uri, ttl_s=60, wait_s=0.5),
        ):
            pass
        assert time.monotonic() - started < 5


def test_lock_is_free_again_after_release(lock_uri: str) -> None:
    with lease_lock(lock_uri):
        pass
    with lease_lock(lock_uri, wait_s=0.5) as lease:
        assert lease.uri == lock_uri


def test_expired_lease_of_a_dead_holder_is_taken_over(lock_uri: str) -> None:
    dead = lease_lock(lock_uri, ttl_s=0.3)
    dead.__enter__()  # the holder dies without releasing

    time.sleep(0.5)
    with lease_lock(lock_uri, ttl_s=60, wait_s=3) as lease:
        assert lease.expires_at > time.time()


def test_concurrent_holders_never_overlap(lock_uri: str) -> None:
    inside = 0
    overlaps: list[int] = []
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside
        with lease_lock(lock_uri, ttl_s=30, wait_s=20):
            with guard:
                inside += 1
                overlaps.append(inside)
            time.sleep(0.05)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlaps == [1, 1, 1, 1]
