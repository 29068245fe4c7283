"""`cloudguard infra`: the offline plan of the Pulumi program.

`synth` runs the whole program for one stack under Pulumi mocks (no CLI, no
cloud) and writes the resource inventory plus every Kubernetes and Argo
manifest; `apps` renders the Argo CD-synced tree under `deploy/apps/`.
"""

import json
from pathlib import Path
from typing import Annotated

import typer

infra_app = typer.Typer(
    name="infra",
    help="Infrastructure as code: offline synth of the Pulumi stacks.",
    no_args_is_help=True,
)


@infra_app.command("synth")
def synth(
    stack: Annotated[
        str, typer.Option(help="Stack to synthesize: dev, staging or prod.")
    ],
    out: Annotated[Path, typer.Option(help="Directory for inventory.json and YAML.")],
    stacks_dir: Annotated[
        Path, typer.Option(help="Where Pulumi.<stack>.yaml live.")
    ] = Path("stacks"),
    pipeline_dir: Annotated[
        Path, typer.Option(help="Rendered pipeline manifests to load.")
    ] = Path("deploy/pipelines"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary.")
    ] = False,
) -> None:
    """Run the program for STACK under mocks and write what it would create."""
    from cloudguard_platform import PlatformError, run_mocked, write_synth

    try:
        result = run_mocked(stack, stacks_dir, pipeline_dir)
        counts = write_synth(result, out)
    except PlatformError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error

    summary = {"stack": stack, "out": str(out), **counts}
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{stack}: {counts['resources']} resources, {counts['cluster_manifests']} "
        f"cluster manifests, {counts['gitops_files']} GitOps files, "
        f"{counts['helm_releases']} Helm releases -> {out}"
    )


@infra_app.command("apps")
def apps(
    root: Annotated[
        Path, typer.Option(help="Repository root; writes ROOT/deploy/apps/<stack>/.")
    ] = Path("."),
    stacks_dir: Annotated[
        Path, typer.Option(help="Where Pulumi.<stack>.yaml live.")
    ] = Path("stacks"),
) -> None:
    """Render the Argo CD-synced workloads of every stack from its config."""
    from cloudguard_platform import (
        STACKS,
        PlatformError,
        settings_for,
        write_gitops_tree,
    )

    try:
        for stack in STACKS:
            written = write_gitops_tree(settings_for(stack, stacks_dir), root)
            typer.echo(
                f"{stack}: {len(written)} files under {root / 'deploy/apps' / stack}"
            )
    except PlatformError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.add_typer(infra_app)
