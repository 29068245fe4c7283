"""`cloudguard demo`: the production path on embedded stand-ins, end to end."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from cloudguard_pipelines.demo import DemoReading
    from rich.console import Console
    from rich.table import Table

# Metrics worth a planner's glance, in this order, when the trainer logged them.
_HEADLINE_METRICS = (
    "holdout_pr_auc",
    "holdout_roc_auc",
    "holdout_precision",
    "holdout_recall",
    "holdout_f1",
    "holdout_brier",
    "threshold",
)


_PIPELINE_STAGE = "2. pipeline: ingest → validate → train → evaluate → gate → promote"


class DemoFailedError(Exception):
    """A demo stage failed; the message says which and why."""


def demo(
    workdir: Annotated[
        Path,
        typer.Option("--workdir", help="Emptied, then holds the demo's files."),
    ] = Path(".cloudguard/demo"),
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each step's own output.")
    ] = False,
) -> None:
    """Run the whole production path locally: embedded S3 and MLflow, the
    pipeline, the service, and predictions for real readings."""
    from rich.console import Console

    from cloudguard_cli.commands.pipeline import stop_cleanly_on_signals

    console = Console(highlight=False)
    timings: dict[str, float] = {}
    stop_cleanly_on_signals()
    try:
        _run_demo(console, workdir, verbose, timings)
    except DemoFailedError as error:
        console.print(_timings_table(timings))
        console.print(f"[bold red]demo failed[/]: {escape(str(error))}")
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; every process it started was stopped[/]")
        raise typer.Exit(130) from None
    console.print(_timings_table(timings))
    console.print(f"[bold green]demo finished[/] in {sum(timings.values()):.1f} s")


@contextmanager
def _stage(console: "Console", name: str, timings: dict[str, float]) -> Iterator[None]:
    console.rule(f"[bold]{name}")
    started = time.monotonic()
    try:
        yield
    except DemoFailedError:
        raise
    except Exception as error:
        raise DemoFailedError(f"{name}: {error}") from error
    finally:
        timings[name] = time.monotonic() - started


def _run_demo(
    console: "Console", workdir: Path, verbose: bool, timings: dict[str, float]
) -> None:
    from datetime import UTC, datetime

    from cloudguard_model.datasets import DATASET_PATH
    from cloudguard_pipelines.demo import (
        ServiceProcess,
        api_keys_setting,
        load_readings,
    )
    from cloudguard_pipelines.local import champion_metrics
    from cloudguard_pipelines.sandbox import Sandbox, new_api_key, prepare_workdir

    from cloudguard_cli.commands.pipeline import log_to_file, run_pipeline_in

    with _stage(console, "1. embedded S3 and MLflow", timings):
        workdir = prepare_workdir(workdir, fresh=True)
        log_to_file(workdir / "cloudguard.log")
        sandbox = Sandbox(workdir)
        sandbox.start()
        console.print(f"working directory: [bold]{workdir}[/]")
        console.print(f"  S3 (moto) {sandbox.endpoint}, fake credentials")
        console.print(f"  MLflow    {sandbox.tracking_uri}")
        console.print(f"  artifacts {sandbox.artifact_root}")
    try:
        with _stage(console, _PIPELINE_STAGE, timings):
            run_key = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            summary = run_pipeline_in(
                sandbox, console, data=DATASET_PATH, run_key=run_key, verbose=verbose
            )
            if not summary["succeeded"]:
                raise DemoFailedError(
                    f"pipeline step {summary['failed_step']} failed: {summary['error']}"
                )
            if summary["champion"] is None:
                raise DemoFailedError(
                    "the pipeline finished but no version is champion"
                )
            metrics = champion_metrics(sandbox.tracking_uri)
            console.print(_metrics_table(summary["champion"], metrics))

        with _stage(console, "3. service on 127.0.0.1 and predictions", timings):
            readings = load_readings(DATASET_PATH)
            api_key = new_api_key()
            env = sandbox.env()
            env["CLOUDGUARD_API_KEYS"] = api_keys_setting("demo", api_key)
            service = ServiceProcess(
                env, api_key=api_key, cwd=workdir, log_path=workdir / "service.log"
            )
            with service:
                console.print(
                    f"service ready at {service.base_url} (log {service.log_path})"
                )
                answer = service.predict([item.reading for item in readings])
                console.print(_predictions_table(readings, answer))
                exit_code = service.stop()
            console.print(f"service stopped (exit code {exit_code})")
    finally:
        sandbox.stop()


def _metrics_table(version: str, metrics: dict[str, float]) -> "Table":
    from rich.table import Table

    table = Table(title=f"champion: version {version}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    shown = [name for name in _HEADLINE_METRICS if name in metrics]
    for name in shown:
        table.add_row(name, f"{metrics[name]:.4f}")
    return table


def _predictions_table(
    readings: list["DemoReading"], answer: dict[str, Any]
) -> "Table":
    from rich.table import Table

    table = Table(
        title=f"predictions by model version {answer.get('model_version')} "
        f"(threshold {answer.get('threshold', float('nan')):.3f})",
        title_justify="left",
    )
    for column in (
        "UDI",
        "type",
        "what happened",
        "P(failure)",
        "decision",
        "likely mode",
    ):
        numeric = column in {"UDI", "P(failure)"}
        table.add_column(column, justify="right" if numeric else "left")
    for item, prediction in zip(readings, answer["predictions"], strict=True):
        happened = (
            "failed: " + "+".join(item.modes or ("no mode",))
            if item.failed
            else "healthy"
        )
        decision = "[bold red]FAILURE[/]" if prediction["failure"] else "[green]ok[/]"
        table.add_row(
            str(item.udi),
            item.reading["product_type"],
            happened,
            f"{prediction['failure_probability']:.3f}",
            decision,
            str(prediction.get("failure_mode", "")),
        )
    return table


def _timings_table(timings: dict[str, float]) -> "Table":
    from rich.table import Table

    table = Table(title="stage timings", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in timings.items():
        table.add_row(name, f"{seconds:.1f}")
    return table


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.command("demo")(demo)
