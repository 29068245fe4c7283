"""`cloudguard train`: validate, train, evaluate on a time-ordered holdout,
log to MLflow and register the model as `challenger`."""

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

_TARGETS = {"holdout_f1": 0.82, "holdout_pr_auc": 0.80}
"""The product's quality bar on the time-ordered holdout (issue 3)."""


def _quality_table(metrics: dict[str, float], version: str, reused: bool) -> Any:
    from cloudguard_model.features import FAILURE_MODES
    from rich.table import Table

    title = f"cloudguard-failure v{version}" + (" (reused)" if reused else "")
    table = Table(title=title)
    table.add_column("metric (holdout)")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key in ("f1", "pr_auc", "roc_auc", "precision", "recall", "brier"):
        value = metrics.get(f"holdout_{key}", float("nan"))
        target = _TARGETS.get(f"holdout_{key}")
        mark = (
            ""
            if target is None
            else (f">= {target}" + (" ok" if value >= target else " MISSED"))
        )
        table.add_row(key, f"{value:.4f}", mark)
    table.add_row("threshold", f"{metrics.get('threshold', float('nan')):.4f}", "")
    confusion = " ".join(
        f"{name.upper()}={int(metrics.get(f'holdout_{name}', 0))}"
        for name in ("tp", "fp", "fn", "tn")
    )
    table.add_row("confusion", confusion, "")
    for mode in FAILURE_MODES:
        pr_auc = metrics.get(f"mode_{mode}_pr_auc")
        base = metrics.get(f"mode_{mode}_base_rate", 0.0)
        if pr_auc is None:
            table.add_row(f"{mode} PR-AUC", "n/a", "no cases in holdout")
            continue
        verdict = (
            "predictable"
            if metrics.get(f"mode_{mode}_predictable")
            else "mostly random"
        )
        table.add_row(f"{mode} PR-AUC", f"{pr_auc:.3f}", f"base {base:.4f}, {verdict}")
    return table


def train(
    data: Annotated[
        str,
        typer.Option(help="Training data: local path or s3:// URI (CSV or Parquet)."),
    ],
    evaluation: Annotated[
        str | None,
        typer.Option(
            help="Frozen evaluation set URI: the holdout; its UDIs are never "
            "trained on."
        ),
    ] = None,
    run_key: Annotated[
        str | None,
        typer.Option(
            help="Idempotency key: a version already tagged with it is returned, "
            "not retrained."
        ),
    ] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file overriding TrainConfig fields.")
    ] = None,
    dask_scheduler: Annotated[
        str | None,
        typer.Option(
            help="Train the boosters on this Dask scheduler (tcp://host:8786); "
            "its workers must reach --data at the same URI."
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object as the last stdout line."),
    ] = False,
) -> None:
    """Train the failure model and register it as the `challenger`."""
    # OpenMP threads that spin while waiting starve a shared host; let them
    # sleep instead (read when XGBoost loads, so set before importing it).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from cloudguard_model.config import TrainConfig
    from cloudguard_model.errors import CloudGuardModelError
    from cloudguard_model.names import ENV_TRACKING_URI
    from cloudguard_model.training import train_model
    from rich.console import Console

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    console = Console(stderr=True)
    if not (tracking_uri or os.environ.get(ENV_TRACKING_URI)):
        console.print(
            f"note: no --tracking-uri and no ${ENV_TRACKING_URI}: "
            "MLflow uses its local default store",
            markup=False,
        )
    try:
        train_config = TrainConfig.from_yaml(config) if config else TrainConfig()
        result = train_model(
            data,
            config=train_config,
            tracking_uri=tracking_uri,
            evaluation_uri=evaluation,
            run_key=run_key,
            dask_scheduler=dask_scheduler,
        )
    except CloudGuardModelError as error:
        console.print(
            f"[red]training failed:[/red] {escape(str(error))}",
            markup=True,
            highlight=False,
        )
        if as_json:
            typer.echo(json.dumps({"ok": False, "error": str(error)}))
        raise typer.Exit(code=1) from error

    console.print(_quality_table(result.metrics, result.version, result.reused))
    payload = {
        "run_id": result.run_id,
        "version": result.version,
        "model_uri": result.model_uri,
        "metrics": result.metrics,
        "threshold": result.threshold,
        "data_sha256": result.data_sha256,
        "reused": result.reused,
    }
    if as_json:
        typer.echo(json.dumps(payload, sort_keys=True))
    else:
        typer.echo(f"registered {result.model_uri} (run {result.run_id})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.command("train")(train)
