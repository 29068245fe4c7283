"""Errors raised by the CloudGuard Pulumi program.

PlatformError
 ├── ConfigError      a stack setting is missing or out of range
 └── ManifestError    a rendered or loaded manifest is not what we expect
"""


class PlatformError(Exception):
    """Root of every error the platform package raises."""


class ConfigError(PlatformError):
    """A stack setting is missing or invalid; the message names key and fix."""

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"cloudguard:{key}: {problem}; {fix}")
        self.key = key


class ManifestError(PlatformError):
    """A manifest file is missing, unreadable or of the wrong shape."""
