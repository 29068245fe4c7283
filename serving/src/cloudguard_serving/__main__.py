"""`cloudguard-serve`: run the service under granian (ASGI, uvloop).

Meant to be the container's PID 1 (exec form): granian handles SIGTERM by
closing the listener, letting in-flight requests finish and then running the
app's shutdown, which drains the batcher and flushes the inference log.
"""

import logging
import os

from cloudguard_serving.settings import Settings


def main() -> None:
    """Read settings from the environment and serve until SIGTERM/SIGINT."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    settings = Settings.from_env()  # fail fast on bad settings, before forking
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    logging.basicConfig(
        level=os.environ.get("CLOUDGUARD_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
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
