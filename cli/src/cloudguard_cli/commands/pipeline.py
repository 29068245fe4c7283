"""`cloudguard pipeline`: render the Argo manifests, run a step, run locally."""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

if TYPE_CHECKING:
    from cloudguard_pipelines.harness import LineSink
    from cloudguard_pipelines.local import PipelineRun, StepRecord
    from cloudguard_pipelines.sandbox import Sandbox
    from rich.console import Console
    from rich.table import Table

pipeline_app = typer.Typer(
    name="pipeline",
    help="The retraining pipeline: render it for Argo, or run it on this machine.",
    no_args_is_help=True,
)


@pipeline_app.command("render")
def render_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the YAML files.")
    ] = Path("deploy/pipelines"),
) -> None:
    """Write the Argo WorkflowTemplate and CronWorkflow YAML (schema-checked)."""
    from cloudguard_pipelines.errors import CloudGuardPipelineError
    from cloudguard_pipelines.render import render

    try:
        written = render(out)
    except CloudGuardPipelineError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    for path in written:
        typer.echo(f"wrote {path}")


@pipeline_app.command(
    "step",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def step_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Step name, e.g. ingest.")],
    outputs_dir: Annotated[
        Path,
        typer.Option(
            "--outputs-dir", help="Write one file per output here (for Argo)."
        ),
    ] = Path("/tmp/outputs"),  # noqa: S108 - the pod's emptyDir
) -> None:
    """Run one step's command (after `--`) as the cluster does; publish its outputs.

    The step's JSON result is written as one file per output under
    --outputs-dir, where Argo reads output parameters. Exit code 75 means the
    failure looked transient and Argo's retry strategy may run it again.
    """
    from cloudguard_pipelines.errors import CloudGuardPipelineError
    from cloudguard_pipelines.harness import TransientStepError, run_step, write_outputs
    from cloudguard_pipelines.spec import TRANSIENT_EXIT_CODE, step_named

    argv = list(ctx.args)
    try:
        step = step_named(name)
        result = run_step(
            step,
            argv,
            stdout_sink=lambda line: print(line, flush=True),
            stderr_sink=lambda line: print(line, file=sys.stderr, flush=True),
        )
        write_outputs(result, outputs_dir)
    except TransientStepError as error:
        typer.echo(f"error (transient, will be retried): {error}", err=True)
        raise typer.Exit(TRANSIENT_EXIT_CODE) from error
    except CloudGuardPipelineError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


@pipeline_app.command("run")
def run_command(
    local: Annotated[
        bool, typer.Option("--local", help="Run on this machine (the only mode here).")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="CSV to upload as raw data (default: AI4I 2020)."),
    ] = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Tracking store and artifacts live here.")
    ] = Path(".cloudguard/pipeline"),
    scheduled_time: Annotated[
        str | None,
        typer.Option(
            "--scheduled-time",
            help="Run key as the CronWorkflow passes it (default: now, to the minute).",
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Empty the working directory first.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show each step's own output.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary as the last line.")
    ] = False,
) -> None:
    """Run every pipeline step in order on embedded S3 and a local MLflow store.

    The tracking store persists in --workdir, so a second run with the same
    --scheduled-time is a no-op: it trains and promotes nothing.
    """
    if not local:
        typer.echo(
            "error: only `--local` runs from here; in a cluster the CronWorkflow "
            "runs the pipeline (see docs/pipeline.md)",
            err=True,
        )
        raise typer.Exit(2)
    from cloudguard_pipelines.errors import CloudGuardPipelineError
    from rich.console import Console

    console = Console(stderr=json_out, highlight=False)
    run_key = scheduled_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:00Z")
    stop_cleanly_on_signals()
    try:
        summary = run_local(
            console,
            workdir=workdir,
            data=data,
            run_key=run_key,
            fresh=fresh,
            verbose=verbose,
        )
    except CloudGuardPipelineError as error:
        console.print(f"[bold red]error[/]: {error}")
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; every process it started was stopped[/]")
        raise typer.Exit(130) from None
    if json_out:
        typer.echo(json.dumps(summary))
    if not summary["succeeded"]:
        raise typer.Exit(1)


def run_local(
    console: "Console",
    *,
    workdir: Path,
    data: Path | None,
    run_key: str,
    fresh: bool,
    verbose: bool = False,
) -> dict[str, Any]:
    """Start the sandbox, run the pipeline with progress on `console`, stop."""
    from cloudguard_pipelines.sandbox import Sandbox, prepare_workdir

    workdir = prepare_workdir(workdir, fresh=fresh)
    log_to_file(workdir / "cloudguard.log")
    console.print(f"working directory: [bold]{workdir}[/]")
    with Sandbox(workdir) as sandbox:
        return run_pipeline_in(
            sandbox, console, data=data, run_key=run_key, verbose=verbose
        )


def run_pipeline_in(
    sandbox: "Sandbox",
    console: "Console",
    *,
    data: Path | None,
    run_key: str,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run every step against a started sandbox; print progress; return a summary.

    Shared by `pipeline run --local` and `demo`.
    """
    from cloudguard_model.datasets import DATASET_PATH
    from cloudguard_pipelines.local import promoted, registry_state, run_in_sandbox

    console.print(f"embedded S3: {sandbox.endpoint}   tracking: {sandbox.tracking_uri}")
    console.print(f"run key (scheduled time): [bold]{run_key}[/]")
    sink = (
        (lambda line: console.print(f"    [dim]{escape(line)}[/]")) if verbose else None
    )
    run = run_in_sandbox(
        sandbox,
        data=data or DATASET_PATH,
        run_key=run_key,
        on_step=lambda record: console.print(step_line(record)),
        stdout_sink=sink,
        stderr_sink=sink,
    )
    state = registry_state(sandbox.tracking_uri)
    console.print(steps_table(run))
    failed = [record for record in run.records if record.status == "failed"]
    summary: dict[str, Any] = {
        "succeeded": run.succeeded,
        "run_key": run_key,
        "workdir": str(sandbox.workdir),
        "tracking_uri": sandbox.tracking_uri,
        "promoted": promoted(run),
        "champion": state.champion,
        "previous": state.previous,
        "versions": state.versions,
        "steps": {record.step: str(record.status) for record in run.records},
        "seconds": {record.step: round(record.seconds, 1) for record in run.records},
        "error": failed[0].error if failed else None,
        "failed_step": failed[0].step if failed else None,
    }
    if run.succeeded:
        console.print(
            f"[bold green]pipeline succeeded[/]: champion version "
            f"{state.champion or '(none)'}; promoted by this run: {summary['promoted']}"
        )
    else:
        console.print(
            f"[bold red]pipeline failed[/] at {failed[0].step}: "
            f"{escape(failed[0].error)}"
        )
    return summary


def stop_cleanly_on_signals() -> None:
    """Ctrl-C and SIGTERM both raise KeyboardInterrupt, so every child process and
    the embedded servers are stopped by the `finally` blocks on the way out."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def log_to_file(path: Path) -> None:
    """Send this process's log events to `path`; the terminal shows progress."""
    import logging

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _echo_dim(console: "Console") -> "LineSink":
    return lambda line: console.print(f"    [dim]{escape(line)}[/]")


def step_line(record: "StepRecord") -> str:
    """One progress line per finished step."""
    mark = {"succeeded": "[green]ok[/]", "skipped": "[yellow]skipped[/]"}.get(
        str(record.status), "[red]FAILED[/]"
    )
    retries = f", {record.attempts} attempts" if record.attempts > 1 else ""
    return f"  {record.step:<9} {mark}  {record.seconds:6.1f} s{retries}"


def steps_table(run: "PipelineRun") -> "Table":
    """The steps of a run, their timing and their key results."""
    from rich.table import Table

    table = Table(title="pipeline steps", title_justify="left")
    for column in ("step", "status", "seconds", "result"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for record in run.records:
        shown = {
            key: _brief(key, record.result[key])
            for key in _SHOWN
            if key in record.result
        }
        text = record.error or ", ".join(
            f"{key}={value}" for key, value in shown.items()
        )
        table.add_row(
            record.step, str(record.status), f"{record.seconds:.1f}", escape(text[:200])
        )
    return table


_SHOWN = (
    "rows",
    "sha256",
    "version",
    "reused",
    "positives",
    "outcome",
    "promoted",
    "reason",
)
"""Result keys worth a column in the steps table, in this order."""


def _brief(key: str, value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    if key == "sha256":
        return text[:12]
    return text if len(text) <= 90 else text[:87] + "..."


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.add_typer(pipeline_app)
