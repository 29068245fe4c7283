"""Exceptions raised by cloudguard_model; every one derives from one root."""


class CloudGuardModelError(Exception):
    """Root of every error this package raises on purpose."""


class FeatureError(CloudGuardModelError, ValueError):
    """A reading cannot be turned into model features (e.g. unknown type)."""


class LeakageError(CloudGuardModelError, ValueError):
    """A caller asked for an identifier, label or failure-mode column as input."""


class ConfigError(CloudGuardModelError, ValueError):
    """A training setting is out of range or unknown."""


class DataValidationError(CloudGuardModelError, ValueError):
    """Input data failed validation; `report` names column, UDI and reason."""

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class TrainingError(CloudGuardModelError):
    """Training could not produce a model (e.g. a split without failures)."""


class GateError(CloudGuardModelError):
    """The promotion gate could not reach a decision or act on it; nothing moved."""
