"""Exceptions raised by cloudguard_model; every one derives from one root."""


class CloudGuardModelError(Exception):
    """Root of every error this package raises on purpose."""


class FeatureError(CloudGuardModelError, ValueError):
    """A reading cannot be turned into model features (e.g. unknown type)."""


class LeakageError(CloudGuardModelError, ValueError):
    """A caller asked for an identifier, label or failure-mode column as input."""
