"""Per-gateway bearer keys, stored only as SHA-256 hashes.

Keys are long random tokens handed to each plant gateway, so a plain SHA-256
is enough at rest (no password stretching needed, see decision 0302). The
service keeps a map hash -> gateway name and compares in constant time.
"""

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from cloudguard_serving.errors import ConfigError
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_GATEWAY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as stored in CLOUDGUARD_API_KEYS."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key for a gateway (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def _add(keys: dict[str, str], gateway: str, digest: str, where: str) -> None:
    digest = digest.strip().lower().removeprefix("sha256:")
    if not _GATEWAY.match(gateway):
        raise ConfigError(
            f"{where}: gateway name {gateway!r} must be 1-64 letters, digits or _.:-"
        )
    if not _HEX64.match(digest):
        raise ConfigError(
            f"{where}: the key of gateway {gateway!r} is not a 64-character "
            "sha256 hex digest; store `cloudguard hash-key KEY`, not the key"
        )
    keys[digest] = gateway


class KeyRing:
    """Maps a presented bearer key to the gateway it belongs to."""

    def __init__(self, hashed: Mapping[str, str]) -> None:
        self._hashed = dict(hashed)

    def __len__(self) -> int:
        return len(self._hashed)

    @classmethod
    def from_settings(cls, settings: Settings) -> "KeyRing":
        """Read `gateway=hash` pairs from the env setting and the key file."""
        keys: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in settings.api_keys.split(","))):
            gateway, sep, digest = pair.partition("=")
            if not sep:
                raise ConfigError(
                    f"CLOUDGUARD_API_KEYS entry {pair[:12]!r}... is not "
                    "`gateway=sha256hex`"
                )
            _add(keys, gateway.strip(), digest, "CLOUDGUARD_API_KEYS")
        if settings.api_keys_file:
            path = Path(settings.api_keys_file)
            if not path.is_file():
                raise ConfigError(f"CLOUDGUARD_API_KEYS_FILE={path}: no such file")
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) != 2:
                    raise ConfigError(
                        f"{path} line {number}: expected `gateway sha256hex`"
                    )
                _add(keys, parts[0], parts[1], f"{path} line {number}")
        logger.info("event=keys_loaded gateways=%d", len(set(keys.values())))
        return cls(keys)

    def gateway_for(self, authorization: str | None) -> str | None:
        """The gateway owning the bearer key in an Authorization header."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hash_key(token.strip())
        # Compare against every stored hash so timing does not reveal a prefix.
        found = None
        for stored, gateway in self._hashed.items():
            if hmac.compare_digest(stored, digest):
                found = gateway
        return found
