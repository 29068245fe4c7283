"""`cloudguard infra synth` and `infra apps`: the offline plan on disk."""

import json
from pathlib import Path

import yaml
from cloudguard_cli.main import app
from cloudguard_platform import STACKS, settings_for, write_gitops_tree
from typer.testing import CliRunner

from .conftest import PIPELINE_DIR, REPO, STACKS_DIR

runner = CliRunner()


def test_synth_writes_the_inventory_and_every_manifest(tmp_path: Path) -> None:
    out = tmp_path / "prod"

    result = runner.invoke(
        app,
        [
            "infra",
            "synth",
            "--stack",
            "prod",
            "--out",
            str(out),
            "--stacks-dir",
            str(STACKS_DIR),
            "--pipeline-dir",
            str(PIPELINE_DIR),
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    inventory = json.loads((out / "inventory.json").read_text(encoding="utf-8"))
    assert (
        inventory["resourceCount"]
        == summary["resources"]
        == len(inventory["resources"])
    )
    assert inventory["countsByType"]["aws:s3/bucket:Bucket"] == 3
    cluster = sorted((out / "cluster").glob("*.yaml"))
    assert len(cluster) == summary["cluster_manifests"]
    kinds = {yaml.safe_load(p.read_text(encoding="utf-8"))["kind"] for p in cluster}
    assert {"CronWorkflow", "Application", "NodePool"} <= kinds
    assert (out / "gitops/deploy/apps/prod/serving/rollout.yaml").is_file()
    assert len(list((out / "helm").glob("*.yaml"))) == summary["helm_releases"] == 6


def test_synth_output_holds_no_secret_value(tmp_path: Path) -> None:
    runner.invoke(
        app,
        [
            "infra",
            "synth",
            "--stack",
            "dev",
            "--out",
            str(tmp_path),
            "--stacks-dir",
            str(STACKS_DIR),
            "--pipeline-dir",
            str(PIPELINE_DIR),
        ],
    )

    text = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*.*"))
    assert "synth-placeholder" not in text
    assert '"kubeconfig": "[secret]"' in text


def test_an_unknown_stack_fails_with_a_clear_message(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["infra", "synth", "--stack", "qa", "--out", str(tmp_path)]
    )

    assert result.exit_code == 2
    assert "unknown stack 'qa'" in result.output


def test_committed_gitops_tree_matches_the_stack_config(tmp_path: Path) -> None:
    for stack in STACKS:
        for path in write_gitops_tree(settings_for(stack, STACKS_DIR), tmp_path):
            committed = REPO / path.relative_to(tmp_path)
            assert committed.is_file(), (
                f"{committed} missing; run `cloudguard infra apps`"
            )
            assert committed.read_text(encoding="utf-8") == path.read_text(
                encoding="utf-8"
            ), f"{committed} is stale; run `cloudguard infra apps`"
