"""Versioned promotion policies shipped with the package (see docs/gate.md)."""

from pathlib import Path
from typing import Final

DEFAULT_POLICY_PATH: Final = Path(__file__).with_name("promotion.yaml")
