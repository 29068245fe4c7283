"""`cloudguard ingest`: the pipeline's first step."""

import json
from typing import Annotated

import typer


def ingest_command(
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="Raw data: an s3:// or local object, or a prefix ending in '/' "
            "(its newest object is taken).",
        ),
    ],
    snapshot_prefix: Annotated[
        str,
        typer.Option("--snapshot-prefix", help="Where the <sha256>.csv snapshot goes."),
    ],
    evaluation_uri: Annotated[
        str | None,
        typer.Option(
            "--evaluation-uri",
            help="Frozen evaluation set; created from this snapshot only if missing "
            "(default: <snapshot-prefix>evaluation.csv).",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as a JSON line last.")
    ] = False,
) -> None:
    """Snapshot the newest raw data under its hash; freeze the evaluation set once."""
    from cloudguard_model.errors import CloudGuardModelError
    from cloudguard_pipelines.errors import CloudGuardPipelineError
    from cloudguard_pipelines.ingest import ingest

    try:
        result = ingest(source, snapshot_prefix, evaluation_uri)
    except (CloudGuardPipelineError, CloudGuardModelError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    if json_out:
        typer.echo(json.dumps(result.to_json()))
        return
    typer.echo(f"read       {result.source_uri}")
    typer.echo(f"snapshot   {result.snapshot_uri} ({result.rows} rows)")
    typer.echo(f"sha256     {result.sha256}")
    created = "created" if result.evaluation_created else "existing"
    typer.echo(f"evaluation {result.evaluation_uri} ({created})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.command("ingest")(ingest_command)
