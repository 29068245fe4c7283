"""Loaded by every Python child of the test session (PYTHONPATH points here)."""

import os

if os.environ.get("CLOUDGUARD_NETGUARD") == "1":
    import cloudguard_netguard

    cloudguard_netguard.install()
