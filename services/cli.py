"""The `switchboard` command line. Each command is a thin shell over a plain function."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from .core.channels import SMSC_PROTOCOLS, ChannelsError, load_channels, receive_urls
from .core.settings import get_settings
from .smsc_simulator.runner import smsc_sim
from .tools.commands import register as register_operator_commands

app = typer.Typer(help="Switchboard: an SMS channel gateway for flow engines.", no_args_is_help=True)
channels_app = typer.Typer(help="Check and list the channels file.", no_args_is_help=True)
run_app = typer.Typer(help="Run a service.", no_args_is_help=True)
app.add_typer(channels_app, name="channels")
app.add_typer(run_app, name="run")


def _load(file: Path | None):
    path = file or Path(get_settings().channels_file)
    try:
        return load_channels(path)
    except ChannelsError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(2) from None


@channels_app.command("check")
def channels_check(file: Path | None = typer.Argument(None, help="Defaults to $SWITCHBOARD_CHANNELS.")):
    """Validate a channels file without starting anything; exit 2 on the first broken file."""
    registry = _load(file)
    counts = {p: sum(c.protocol == p for c in registry.connections.values()) for p in SMSC_PROTOCOLS}
    listed = ", ".join(f"{n} {p.upper()} connections" for p, n in counts.items() if n or p == "smpp")
    typer.echo(f"OK: {len(registry.channels)} channels, {listed} ({registry.source})")


@channels_app.command("list")
def channels_list(file: Path | None = typer.Argument(None, help="Defaults to $SWITCHBOARD_CHANNELS.")):
    """Every channel with the URLs its provider calls."""
    registry = _load(file)
    base = get_settings().public_base
    for channel in registry.channels.values():
        kind = channel.type
        if kind == "rest":
            kind += f" ({channel.aggregator})"
        elif kind in SMSC_PROTOCOLS:
            kind += f" (connection {channel.connection})"
        typer.echo(f"{channel.uuid}  {kind}  {channel.name or '-'}  {channel.address or ''}".rstrip())
        for action, url in receive_urls(channel, base).items():
            typer.echo(f"    {action:<15} {url}")


@app.command("topology")
def topology(file: Path | None = typer.Option(None, "--channels", help="Also declare its SMSC connections' queues.")):
    """Declare every exchange, queue and binding (idempotent)."""
    from .core.broker import connect, declare_topology

    settings = get_settings()
    transports: list[str] = []
    path = file or Path(settings.channels_file)
    if file is not None or path.exists():
        transports = _load(path).transports()

    async def go():
        try:
            connection = await connect(settings, attempts=1)
        except Exception as exc:
            typer.echo(f"cannot reach RabbitMQ at {settings.rabbitmq_url.split('@')[-1]}: {exc}", err=True)
            raise typer.Exit(1) from None
        try:
            return await declare_topology(connection, settings, transports=transports)
        finally:
            await connection.close()

    queues = asyncio.run(go())
    typer.echo(f"declared {len(queues)} queues: " + ", ".join(queues))


app.command("smsc-sim")(smsc_sim)  # options and behaviour live in services/smsc_simulator/runner.py


@run_app.command("router")
def run_router():
    """The router: `outbound.router` -> `sms.transport` by channel type."""
    from .outbound.router import main as router_main

    router_main()


@run_app.command("external")
def run_external():
    """The external (webhook) connector: sends `transport.external` to each channel's send_url."""
    from .outbound.external import main as external_main

    external_main()


@run_app.command("rest")
def run_rest(
    aggregator: list[str] = typer.Option([], "--aggregator", help="Repeatable; default: all six aggregators."),
):
    """The REST aggregator connector: sends `transport.rest.<name>` through each provider's API."""
    from .outbound.rest.connector import main as rest_main

    rest_main(aggregator)


@run_app.command("inbound")
def run_inbound():
    """The inbound HTTP edge: provider callbacks (`/c/...`) -> `sms.inbound`, `sms.status`."""
    from .inbound.server import run

    run()


@run_app.command("smpp")
def run_smpp(connection: str = typer.Option(..., "--connection", help="The smpp_connections entry whose bind to hold.")):
    """The SMPP connector: holds one connection's bind, sends `transport.smpp.<name>`, receives deliver_sm."""
    from .smpp_connector.connector import main as smpp_main

    smpp_main(connection=connection)


@run_app.command("ucp")
def run_ucp(connection: str = typer.Option(..., "--connection", help="The ucp connection (smsc_connections) whose login to hold.")):
    """The UCP/EMI connector: holds one connection's login, sends `transport.ucp.<name>`, receives OT 52/53."""
    from .ucp_connector.connector import main as ucp_main

    ucp_main(connection=connection)


@run_app.command("cimd2")
def run_cimd2(connection: str = typer.Option(..., "--connection", help="The cimd2 connection (smsc_connections) whose login to hold.")):
    """The CIMD2 connector: holds one connection's login, sends `transport.cimd2.<name>`, receives 20/23."""
    from .cimd2_connector.connector import main as cimd2_main

    cimd2_main(connection=connection)


# Operator commands (send, watch, dead list|replay, run all) live in services/tools/commands.py.
register_operator_commands(app, run_app)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
