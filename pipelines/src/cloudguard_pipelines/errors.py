"""Exceptions raised by cloudguard_pipelines; every one derives from one root."""


class CloudGuardPipelineError(Exception):
    """Root of every error this package raises on purpose."""


class SpecError(CloudGuardPipelineError, ValueError):
    """The step list refers to a parameter or output that does not exist."""


class StepFailedError(CloudGuardPipelineError):
    """A pipeline step exited with a code it does not accept, or lied in JSON."""

    def __init__(self, step: str, exit_code: int, detail: str) -> None:
        super().__init__(f"step {step!r} failed (exit code {exit_code}): {detail}")
        self.step = step
        self.exit_code = exit_code
        self.detail = detail


class IngestError(CloudGuardPipelineError):
    """The raw data cannot be found, read or snapshotted."""


class SandboxError(CloudGuardPipelineError):
    """The embedded S3, tracking store or service could not be started."""
