import socket
import subprocess
import sys

import pytest
from cloudguard_netguard import NonLocalConnectionError


@pytest.fixture(autouse=True)
def _private_refusal_log(tmp_path, monkeypatch):
    """These tests refuse on purpose; keep that out of the session's log."""
    monkeypatch.setenv("CLOUDGUARD_NETGUARD_LOG", str(tmp_path / "refused.log"))


def test_connect_to_a_public_address_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(NonLocalConnectionError):
        sock.connect(("203.0.113.7", 443))


def test_metadata_address_is_refused() -> None:
    with pytest.raises(NonLocalConnectionError):
        socket.create_connection(("169.254.169.254", 80), timeout=1)


def test_name_lookup_of_a_remote_host_is_refused() -> None:
    with pytest.raises(NonLocalConnectionError):
        socket.getaddrinfo("s3.amazonaws.com", 443)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=1):
            pass


def test_children_are_guarded_too(tmp_path) -> None:
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    log = tmp_path / "child.log"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "CLOUDGUARD_NETGUARD_LOG": str(log)},
        check=False,
    )
    assert result.returncode != 0
    assert "netguard: refused" in result.stderr
    assert "192.0.2.1" in log.read_text()
