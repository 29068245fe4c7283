"""Refuse any connection or name lookup that leaves 127.0.0.0/8 or ::1.

Installed in the pytest process by conftest and in every Python child it
starts (through the sitecustomize beside this file), so a test that would
talk to AWS, a metadata address or any other host fails loudly instead.
Each refusal is also appended to the file named by CLOUDGUARD_NETGUARD_LOG,
which the test session checks at the end.
"""

import ipaddress
import os
import socket
from typing import Any

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_installed = False


class NonLocalConnectionError(ConnectionRefusedError):
    """A test tried to reach something other than this machine."""


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]")
    if host.lower() in _LOCAL_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, target: Any) -> None:
    message = f"netguard: refused {what} to non-local {target!r} (pid {os.getpid()})"
    log = os.environ.get("CLOUDGUARD_NETGUARD_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(message + "\n")
    raise NonLocalConnectionError(message)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True

    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(
            address[0]
        ):
            _refuse("connect", address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(
            address[0]
        ):
            _refuse("connect", address)
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_local(host):
            _refuse("name lookup", host)
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
