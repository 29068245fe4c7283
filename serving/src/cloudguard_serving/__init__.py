"""CloudGuard serving: the Litestar service that scores plant-gateway readings."""

from cloudguard_serving.app import app_from_env, create_app
from cloudguard_serving.errors import (
    ConfigError,
    ModelLoadError,
    ModelUnavailableError,
    OverloadedError,
    ServingError,
)
from cloudguard_serving.settings import Settings

__all__ = [
    "ConfigError",
    "ModelLoadError",
    "ModelUnavailableError",
    "OverloadedError",
    "ServingError",
    "Settings",
    "app_from_env",
    "create_app",
]
