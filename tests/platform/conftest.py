"""Fixtures for the platform tests: one mocked run per stack, shared."""

from pathlib import Path

import pytest
from cloudguard_platform import STACKS, SynthResult, run_mocked

REPO = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO / "stacks"
PIPELINE_DIR = REPO / "deploy" / "pipelines"


@pytest.fixture(scope="session")
def synths() -> dict[str, SynthResult]:
    """The whole program run under Pulumi mocks for dev, staging and prod."""
    return {stack: run_mocked(stack, STACKS_DIR, PIPELINE_DIR) for stack in STACKS}
