"""Exceptions raised by cloudguard_serving; every one derives from one root.

ServingError
├── ConfigError          a setting or API key file is unusable
├── ModelUnavailableError no model has been loaded yet (not ready)
├── ModelLoadError        a registry version failed to load or warm up
└── OverloadedError       the batch queue is full; the caller should retry
"""


class ServingError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(ServingError, ValueError):
    """A setting or key file cannot be used; the message names it and the fix."""


class ModelUnavailableError(ServingError):
    """No model version is loaded yet, so nothing can be scored."""


class ModelLoadError(ServingError):
    """A model version failed to load, warm up or pass its canned checks."""


class OverloadedError(ServingError):
    """The micro-batch queue is full; the request is refused, not queued."""
