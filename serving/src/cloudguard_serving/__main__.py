"""`cloudguard-serve`: run the service under granian (ASGI, uvloop).

Meant to be the container's PID 1 (exec form): granian handles SIGTERM by
closing the listener, letting in-flight requests finish and then running the
app's shutdown, which drains the batcher and flushes the inference log.
"""

import logging
import os
import sys

from cloudguard_serving.auth import KeyRing
from cloudguard_serving.errors import ConfigError
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)


def _checked_settings() -> Settings:
    """Settings and gateway keys, checked before any worker starts.

    A bad setting ends the process with one line naming it (exit 2) instead
    of a traceback from inside a worker.
    """
    try:
        settings = Settings.from_env()
        keys = KeyRing.from_settings(settings)
    except ConfigError as error:
        print(f"cloudguard-serve: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    if settings.auth and len(keys) == 0:
        logger.warning(
            "event=no_gateway_keys every /v1 request will get 401; set "
            "CLOUDGUARD_API_KEYS=gateway=<hash from `cloudguard hash-key`>"
        )
    return settings


def main() -> None:
    """Read settings from the environment and serve until SIGTERM/SIGINT."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    logging.basicConfig(
        level=os.environ.get("CLOUDGUARD_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    settings = _checked_settings()
    Granian(
        "cloudguard_serving.app:app_from_env",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
