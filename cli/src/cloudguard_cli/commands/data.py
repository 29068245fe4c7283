"""`cloudguard data ...`: validate a data set, synthesise readings, freeze the
evaluation set."""

import json
import logging
from typing import Annotated

import typer

data_app = typer.Typer(help="Data: validate, synthesise, freeze the evaluation set.")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")


@data_app.command("validate")
def validate(
    data: Annotated[
        str, typer.Option(help="Local path or s3:// URI (CSV or Parquet).")
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object as the last stdout line."),
    ] = False,
) -> None:
    """Check a data set against the AI4I schema; exit 1 naming column, UDI, reason."""
    from cloudguard_model.errors import CloudGuardModelError
    from cloudguard_model.validation import validate_data
    from rich.console import Console

    _setup_logging()
    console = Console(stderr=True)
    try:
        report = validate_data(data)
    except CloudGuardModelError as error:
        console.print(f"cannot read {data}: {error}", markup=False, highlight=False)
        if as_json:
            typer.echo(
                json.dumps(
                    {"ok": False, "rows": 0, "warnings": [], "error": str(error)}
                )
            )
        raise typer.Exit(code=1) from error

    console.print(report.summary(), markup=False, highlight=False)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), sort_keys=True))
    if not report.ok:
        raise typer.Exit(code=1)


@data_app.command("synth")
def synth(
    rows: Annotated[int, typer.Option(min=1, help="Number of readings to generate.")],
    out: Annotated[
        str, typer.Option(help="Output path or s3:// URI (.csv or .parquet).")
    ],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2020,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Generate AI4I-like readings following the data set's generating process."""
    from cloudguard_model.synth import write_synthetic

    _setup_logging()
    summary = write_synthetic(out, rows=rows, seed=seed)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(
            f"wrote {summary['rows']} rows to {out} ({summary['failures']} failures)"
        )


@data_app.command("freeze-evaluation")
def freeze_evaluation(
    data: Annotated[str, typer.Option(help="Source data (path or s3:// URI).")],
    out: Annotated[
        str, typer.Option(help="Where the evaluation set goes; never overwritten.")
    ],
    fraction: Annotated[float, typer.Option(help="Latest share of rows by UDI.")] = 0.2,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Freeze the latest rows as the evaluation set (kept as is if it exists)."""
    from cloudguard_model.evalset import freeze_evaluation_set

    _setup_logging()
    evaluation = freeze_evaluation_set(data, out, fraction)
    payload = {
        "uri": evaluation.uri,
        "sha256": evaluation.sha256,
        "rows": len(evaluation.frame),
    }
    if as_json:
        typer.echo(json.dumps(payload, sort_keys=True))
    else:
        typer.echo(f"evaluation set {evaluation.uri}: {payload['rows']} rows")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.add_typer(data_app, name="data")
