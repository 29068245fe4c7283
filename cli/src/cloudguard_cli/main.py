"""The `cloudguard` command: a thin layer over the CloudGuard packages.

Each area registers its own commands from `cloudguard_cli.commands`; those
modules import their heavy dependencies inside the command bodies so that
`cloudguard --help` stays fast.
"""

import typer

from cloudguard_cli.commands import (
    data,
    demo,
    gate,
    infra,
    ingest,
    model,
    pipeline,
    serve,
)

app = typer.Typer(
    name="cloudguard",
    help="CloudGuard: predict machine failure and keep the model honest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for area in (model, data, gate, serve, demo, pipeline, infra, ingest):
    area.register(app)


def main() -> None:
    app()
