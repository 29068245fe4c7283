"""Entry point for `pulumi up` (Pulumi.yaml `main` points at this package)."""

from cloudguard_platform.program import run

run()
