"""`cloudguard` commands for the serve area: serve, hash-key, shadow summary."""

import json
import os
from pathlib import Path
from typing import Annotated

import typer

shadow_app = typer.Typer(help="Shadow scoring results from the inference log.")


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (else MLFLOW_TRACKING_URI).")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Registry alias to follow (default champion).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 1,
) -> None:
    """Run the scoring service (granian) until SIGTERM or Ctrl-C."""
    from cloudguard_model import names
    from cloudguard_serving.__main__ import main

    os.environ["CLOUDGUARD_HOST"] = host
    os.environ["CLOUDGUARD_PORT"] = str(port)
    os.environ["CLOUDGUARD_WORKERS"] = str(workers)
    if tracking_uri:
        os.environ[names.ENV_TRACKING_URI] = tracking_uri
    if alias:
        os.environ[names.ENV_MODEL_ALIAS] = alias
    main()


def hash_key(
    key: Annotated[
        str | None, typer.Argument(help="Key to hash; omit to create a new one.")
    ] = None,
    gateway: Annotated[
        str, typer.Option(help="Gateway name for the CLOUDGUARD_API_KEYS entry.")
    ] = "plant-a",
) -> None:
    """Print the SHA-256 to store in CLOUDGUARD_API_KEYS (and a new key if asked)."""
    from cloudguard_serving.auth import hash_key as digest
    from cloudguard_serving.auth import new_key

    if key is None:
        key = new_key()
        typer.echo(f"key (give to the gateway, store nowhere else): {key}")
    typer.echo(digest(key))
    typer.echo(
        f"for the service: CLOUDGUARD_API_KEYS={gateway}={digest(key)}", err=True
    )


@shadow_app.command("summary")
def shadow_summary(
    log: Annotated[
        str,
        typer.Option(
            help="Inference log: s3://bucket/prefix or a local directory of .jsonl."
        ),
    ],
    out: Annotated[
        str | None, typer.Option(help="Also write the summary JSON to this URI.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON line.")
    ] = False,
) -> None:
    """Agreement, alarm rates and latency of shadow-scored readings."""
    from cloudguard_model.errors import CloudGuardModelError
    from cloudguard_model.storage import write_bytes
    from cloudguard_serving.shadow import read_log_records, summarise

    if "://" not in log and not Path(log).is_dir():
        typer.echo(
            f"--log {log}: no such directory (or pass s3://bucket/prefix)", err=True
        )
        raise typer.Exit(code=1)
    try:
        summary = summarise(read_log_records(log))
        text = json.dumps(summary, sort_keys=True)
        if out:
            write_bytes(out, text.encode("utf-8"))
    except (CloudGuardModelError, OSError, ValueError, KeyError) as error:
        typer.echo(f"cannot summarise {log}: {error}", err=True)
        raise typer.Exit(code=1) from error
    if as_json:
        typer.echo(text)
        return
    if not summary["pairs"]:
        typer.echo(f"no shadow records under {log}")
        return
    for pair in summary["pairs"]:
        typer.echo(
            f"champion v{pair['champion_version']} vs challenger "
            f"v{pair['challenger_version']}: {pair['readings']} readings, "
            f"agreement {pair['agreement']:.2%}, alarm rate "
            f"{pair['champion_alarm_rate']:.2%} -> "
            f"{pair['challenger_alarm_rate']:.2%}, "
            f"challenger p99 {pair['challenger_score_ms_p99']:.2f} ms per batch"
        )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the top-level app."""
    app.command("serve")(serve)
    app.command("hash-key")(hash_key)
    app.add_typer(shadow_app, name="shadow")
