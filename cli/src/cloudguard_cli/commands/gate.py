"""`cloudguard evaluate | gate | promote | rollback`: the promotion gate.

Exit codes (docs/gate.md): 0 promoted or rolled back, 3 rejected by the
policy, 1 error (nothing moved). With --json the last stdout line is one JSON
object; the readable table goes to stderr.
"""

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

if TYPE_CHECKING:
    from cloudguard_model.decision import DecisionRecord
    from cloudguard_model.gate import GateSettings

EXIT_PROMOTED: Final = 0
EXIT_ERROR: Final = 1
EXIT_REJECTED: Final = 3

TrackingOption = Annotated[
    str | None,
    typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)."),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option(help="Promotion policy YAML (default: the packaged promotion.yaml)."),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON object as the last stdout line."),
]


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(record: "DecisionRecord") -> Any:
    from rich.table import Table

    champion = record.champion_version or "none"
    title = (
        f"{record.model_name}: {record.kind} v{record.challenger_version} "
        f"(champion {champion}) -> {record.outcome.upper()}"
    )
    table = Table(title=title, caption=record.reason)
    for column in ("check", "challenger", "champion", "limit", "result", "detail"):
        table.add_column(column, justify="right" if column in {"limit"} else "left")
    styles = {"pass": "green", "fail": "bold red", "skipped": "dim"}
    for check in record.checks:
        status = check["status"]
        table.add_row(
            check["name"],
            _number(check["challenger"]),
            _number(check["champion"]),
            _number(check["limit"]),
            f"[{styles[status]}]{status}[/]",
            check["detail"],
        )
    if record.evaluation:
        table.add_row(
            "evaluation set",
            f"{record.evaluation['rows']} rows",
            f"{record.evaluation['positives']} failures",
            "",
            "",
            f"sha256 {record.evaluation['sha256'][:16]}",
        )
    if record.reused:
        table.add_row("run key", "", "", "", "reused", f"{record.run_key}")
    return table


def _settings(tracking_uri: str | None) -> "GateSettings":
    from cloudguard_model.gate import GateSettings

    return GateSettings.from_env(tracking_uri)


def _fail(error: Exception, as_json: bool, what: str) -> typer.Exit:
    _console().print(
        f"[red]{what} failed, nothing moved:[/red] {error}", highlight=False
    )
    if as_json:
        payload = {"promoted": False, "outcome": "error", "reason": str(error)}
        typer.echo(json.dumps(payload, sort_keys=True))
    return typer.Exit(code=EXIT_ERROR)


def _finish(record: "DecisionRecord", as_json: bool) -> None:
    _console().print(_table(record))
    if as_json:
        typer.echo(record.to_json())
    else:
        typer.echo(f"{record.outcome}: {record.reason}")
    if not record.promoted:
        raise typer.Exit(code=EXIT_REJECTED)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")


def evaluate(
    evaluation: Annotated[
        str, typer.Option(help="Frozen evaluation set URI (local path or s3://).")
    ],
    challenger: Annotated[
        str | None,
        typer.Option(help="Challenger version (default: the `challenger` alias)."),
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Write the report JSON here (path or s3://).")
    ] = None,
    policy: PolicyOption = None,
    tracking_uri: TrackingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score challenger and champion on the same frozen evaluation set."""
    from cloudguard_model import gate
    from cloudguard_model.decision import write_json
    from cloudguard_model.policy import load_policy

    _logging()
    try:
        report = gate.evaluate(
            _settings(tracking_uri),
            evaluation,
            challenger_version=challenger,
            policy=load_policy(policy),
        )
        if out:
            write_json(out, report.to_dict())
    except Exception as error:  # the record of any failure is: nothing moved
        raise _fail(error, as_json, "evaluation") from error
    summary = report.to_dict()
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        champion = report.champion.version if report.champion else "none"
        typer.echo(
            f"challenger v{report.challenger.version} vs champion {champion} on "
            f"{report.rows} rows (sha256 {report.evaluation_sha256[:12]})"
        )


ShadowOption = Annotated[
    str | None,
    typer.Option(
        "--shadow-summary",
        help="JSON from `cloudguard shadow summary --out`: adds the policy's "
        "shadow checks on live readings.",
    ),
]


def gate_command(
    report: Annotated[
        str, typer.Option(help="Report from `cloudguard evaluate --out`.")
    ],
    out: Annotated[
        str | None, typer.Option(help="Write the decision JSON here (path or s3://).")
    ] = None,
    run_key: Annotated[
        str | None, typer.Option(help="Scheduled-run key the decision belongs to.")
    ] = None,
    policy: PolicyOption = None,
    shadow_summary: ShadowOption = None,
    tracking_uri: TrackingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Apply the policy to a report; record the decision (moves nothing)."""
    from cloudguard_model import gate
    from cloudguard_model.decision import read_json, write_json
    from cloudguard_model.evaluation import EvaluationReport
    from cloudguard_model.policy import load_policy
    from cloudguard_model.shadow_check import load_summary

    _logging()
    try:
        settings = _settings(tracking_uri)
        loaded = EvaluationReport.from_dict(read_json(report))
        record = gate.judge(
            settings,
            loaded,
            load_policy(policy),
            run_key,
            load_summary(shadow_summary) if shadow_summary else None,
        )
        gate.publish(settings, record)
        if out:
            write_json(out, record.to_dict())
    except Exception as error:  # the record of any failure is: nothing moved
        raise _fail(error, as_json, "gate") from error
    _finish(record, as_json)


def promote(
    evaluation: Annotated[
        str | None,
        typer.Option(help="Frozen evaluation set URI; evaluate and gate first."),
    ] = None,
    decision: Annotated[
        str | None,
        typer.Option(help="Act on a decision from `cloudguard gate --out` instead."),
    ] = None,
    challenger: Annotated[
        str | None,
        typer.Option(help="Challenger version (default: the `challenger` alias)."),
    ] = None,
    run_key: Annotated[
        str | None,
        typer.Option(help="Scheduled-run key: a rerun with it returns the decision."),
    ] = None,
    notify_url: Annotated[
        str | None,
        typer.Option(help="POST the record here after a promotion (best effort)."),
    ] = None,
    policy: PolicyOption = None,
    shadow_summary: ShadowOption = None,
    tracking_uri: TrackingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move `champion` to the challenger only if every policy check passes."""
    from cloudguard_model import gate
    from cloudguard_model.decision import DecisionRecord, read_json
    from cloudguard_model.policy import load_policy
    from cloudguard_model.shadow_check import load_summary

    _logging()
    if (evaluation is None) == (decision is None):
        raise _fail(
            ValueError("pass exactly one of --evaluation and --decision"),
            as_json,
            "promotion",
        )
    try:
        settings = _settings(tracking_uri)
        record = gate.promote(
            settings,
            evaluation_uri=evaluation,
            decision=DecisionRecord.from_dict(read_json(decision))
            if decision
            else None,
            challenger_version=challenger,
            policy=load_policy(policy),
            run_key=run_key,
            shadow_summary=load_summary(shadow_summary) if shadow_summary else None,
        )
    except Exception as error:  # the record of any failure is: nothing moved
        raise _fail(error, as_json, "promotion") from error
    if notify_url and record.promoted and not record.reused:
        gate.notify(notify_url, record, settings.notify_timeout_s)
    _finish(record, as_json)


def rollback(
    to: Annotated[
        str | None,
        typer.Option(help="Version to serve (default: the `previous` alias)."),
    ] = None,
    reason: Annotated[
        str, typer.Option(help="Why; written into the rollback record.")
    ] = "",
    notify_url: Annotated[
        str | None,
        typer.Option(help="POST the record here after the rollback (best effort)."),
    ] = None,
    tracking_uri: TrackingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point `champion` back at `previous` (or --to VERSION), with a record."""
    from cloudguard_model import gate

    _logging()
    try:
        settings = _settings(tracking_uri)
        record = gate.rollback(settings, to_version=to, reason=reason)
    except Exception as error:  # the record of any failure is: nothing moved
        raise _fail(error, as_json, "rollback") from error
    if notify_url:
        gate.notify(notify_url, record, settings.notify_timeout_s)
    _finish(record, as_json)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.command("evaluate")(evaluate)
    app.command("gate")(gate_command)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
