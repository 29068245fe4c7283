"""Request ids: the caller's `X-Request-ID` when it is safe to log, else new."""

import re
import uuid
from collections.abc import Mapping
from typing import Any

_SAFE = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(scope: Mapping[str, Any]) -> str:
    """Reuse a well-formed incoming id so gateway and service logs join up."""
    existing = scope.get("cloudguard.request_id")
    if existing:
        return str(existing)
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SAFE.match(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex
