"""Which code produced a model or a decision, for lineage records."""

import os
import subprocess
from pathlib import Path

from cloudguard_model.names import ENV_GIT_COMMIT


def code_commit() -> str:
    """The code's commit: CLOUDGUARD_GIT_COMMIT (set in images), else git, else
    'unknown'."""
    pinned = os.environ.get(ENV_GIT_COMMIT)
    if pinned:
        return pinned
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and commit else "unknown"
