"""checkov's Kubernetes and Argo checks on the synthesized manifests.

Runs the pinned checkov through `uv tool run`, offline (`--skip-download`,
`CHECKOV_OFFLINE_ENV`), under the session's network guard. Accepted findings live
in deploy/checkov-exceptions.yaml, each with its reason.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from cloudguard_platform import SynthResult, manifests
from cloudguard_platform.validate import (
    CHECKOV_OFFLINE_ENV,
    checkov_command,
    checkov_failures,
    load_exceptions,
    write_checkov_input,
)

from .conftest import REPO

EXCEPTIONS = REPO / "deploy" / "checkov-exceptions.yaml"


def _scan(directory: Path, skips: list[str]) -> list[str]:
    env = dict(os.environ, **CHECKOV_OFFLINE_ENV)
    done = subprocess.run(
        checkov_command(directory, skips),
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return checkov_failures(json.loads(done.stdout))


@pytest.fixture(scope="module")
def scan_dir(
    synths: dict[str, SynthResult], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    directory = tmp_path_factory.mktemp("checkov")
    documents = []
    for stack in ("dev", "prod"):
        result = synths[stack]
        tree = manifests.gitops_tree(result.settings)
        documents += result.kubernetes_manifests()
        documents += [d for docs in tree.values() for d in docs]
    write_checkov_input(documents, directory)
    return directory


@pytest.mark.slow
def test_checkov_passes_with_only_the_listed_exceptions(scan_dir: Path) -> None:
    accepted = load_exceptions(EXCEPTIONS)

    assert _scan(scan_dir, sorted(accepted)) == []


@pytest.mark.slow
def test_every_listed_exception_is_still_needed(scan_dir: Path) -> None:
    accepted = load_exceptions(EXCEPTIONS)

    failing = {failure.split()[0] for failure in _scan(scan_dir, [])}

    assert failing == set(accepted)
