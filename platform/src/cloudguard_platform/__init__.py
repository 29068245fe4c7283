"""CloudGuard platform: the Pulumi program and its offline synth.

Importing this package declares no resources; `program.run()` does, under the
Pulumi engine (`pulumi up`) or under mocks (`run_mocked`, the tests).
"""

from cloudguard_platform.errors import ConfigError, ManifestError, PlatformError
from cloudguard_platform.settings import STACKS, Settings, parse_settings
from cloudguard_platform.synth import (
    SynthResult,
    run_mocked,
    settings_for,
    write_gitops_tree,
    write_synth,
)

__all__ = [
    "STACKS",
    "ConfigError",
    "ManifestError",
    "PlatformError",
    "Settings",
    "SynthResult",
    "parse_settings",
    "run_mocked",
    "settings_for",
    "write_gitops_tree",
    "write_synth",
]
