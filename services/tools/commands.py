"""The typer shell of the operator commands: `send`, `watch`, `dead list|replay`, `run all`.

`services/cli.py` calls :func:`register` once; everything here only parses options, calls
the plain functions of this package and turns their results into lines and exit codes.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from ..core.channels import ChannelsError, load_channels
from ..core.settings import get_settings
from .common import ToolError, json_line, status_line

dead_app = typer.Typer(help="Inspect and replay what was parked in dead.letters.", no_args_is_help=True)


def _run(coroutine):
    """Run a tool coroutine; a ToolError becomes one line on stderr and its exit code."""
    # The AMQP client logs its own connection failures; the tools report them once, in words.
    for name in ("aio_pika", "aiormq"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coroutine)
    except ToolError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None


def _status_printer(as_json: bool):
    return (lambda status: typer.echo(json_line(status))) if as_json else (lambda status: typer.echo(status_line(status)))


def send(
    channel: str = typer.Option(..., "--channel", help="The channel's uuid."),
    to: str = typer.Option(..., "--to", help="E.164 number (+250788123123) or URN (tel:+250788123123, ext:abc)."),
    text: str = typer.Option("", "--text", help="The message; may be empty only with --attachment."),
    msg_id: str | None = typer.Option(None, "--id", help="The SendRequest id (digits become a number); default: the clock in µs."),
    attachments: list[str] | None = typer.Option(None, "--attachment", help="Attachment, e.g. image/jpeg:https://... (repeatable)."),
    quick_replies: list[str] | None = typer.Option(None, "--quick-reply", help="Quick reply (repeatable)."),
    wait: bool = typer.Option(False, "--wait", help="Follow the message's statuses until it is settled."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="With --wait: give up after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print each status as its JSON body."),
):
    """Publish one SendRequest to sms.outbound (send.<channel>), as the flow engine would.

    Nothing is published when an option is invalid. With --wait, a private queue is bound to sms.status before the publish, and each status of this message is printed as it arrives; queued and errored (a retry is scheduled) keep it waiting.

    Exit codes:
    0 published (with --wait: wired, sent or delivered);
    1 failed, or the broker did not answer or refused the message;
    2 invalid options (nothing published);
    3 --wait got no verdict within --timeout.
    """
    settings = get_settings()
    from .send import build_request
    from .send import send as send_request

    try:
        request = build_request(channel, to, text, msg_id=msg_id, attachments=attachments or [], quick_replies=quick_replies or [])
    except ToolError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    code = _run(
        send_request(
            settings, request, wait=wait, timeout=timeout,
            on_status=_status_printer(as_json), on_published=lambda line: typer.echo(line, err=True),
        )
    )
    if code == 3:
        typer.echo(f"no wired, sent, delivered or failed status for id={request.id} within {timeout:g} s", err=True)
    raise typer.Exit(code)


def watch(
    channel: str | None = typer.Option(None, "--channel", help="Only this channel's statuses."),
    status: str | None = typer.Option(None, "--status", help="Only this status: queued, wired, sent, delivered, errored, failed."),
    count: int | None = typer.Option(None, "--count", min=1, help="Exit after this many statuses."),
    as_json: bool = typer.Option(False, "--json", help="Print each status as its JSON body."),
):
    """Live tail of sms.status through a private auto-deleted queue, one line per status, until Ctrl-C.

    It never reads status.updates (the flow engine's feed). Ctrl-C or SIGTERM exits 0.
    """
    from .watch import watch as watch_statuses

    code = _run(
        watch_statuses(
            get_settings(), channel_uuid=channel, status=status, count=count,
            on_status=_status_printer(as_json), on_ready=lambda line: typer.echo(line, err=True),
        )
    )
    raise typer.Exit(code)


@dead_app.command("list")
def dead_list(
    limit: int = typer.Option(100, "--limit", min=1, help="Show at most this many, oldest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per dead letter, body included."),
):
    """Show what is in dead.letters: why each message is there, where it came from, its body.

    Non-destructive: every message is handed back to the queue (dead.letters has no delivery limit).
    """
    from .dead import list_dead

    letters = _run(list_dead(get_settings(), limit))
    for letter in letters:
        if as_json:
            typer.echo(json_line(letter.as_dict()))
        else:
            origin = f"{letter.exchange or '?'} {letter.routing_key}"
            typer.echo(
                f"{letter.message_id or '-'}  id={letter.body_id}  channel={letter.channel_uuid}  from {origin}\n"
                f"    reason: {letter.reason}\n    body: {letter.body[:300].decode('utf-8', 'replace')}"
            )
    if not as_json:
        typer.echo(f"{len(letters)} dead letter(s) shown", err=True)


@dead_app.command("replay")
def dead_replay(
    ids: list[str] | None = typer.Option(None, "--id", help="The message_id or body id to replay (repeatable)."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter present when the command starts."),
):
    """Republish dead letters to their original exchange and routing key, then remove them.

    Each one leaves dead.letters only after the broker confirmed its republish; one that cannot be routed stays. Only messages present at the start are considered. A message that is still invalid is just dead-lettered again by its consumer: fix the cause (or the channels file) first.

    Exit 0 when everything chosen was replayed, 1 otherwise, 2 without --id or --all.
    """
    from .dead import replay_dead

    result = _run(
        replay_dead(
            get_settings(), ids=set(ids or []), replay_all=replay_all,
            on_replayed=lambda d: typer.echo(f"replayed {d.message_id or '-'} id={d.body_id} to {d.exchange} {d.routing_key}"),
        )
    )
    for letter, problem in result.refused:
        typer.echo(f"kept {letter.message_id or '-'} id={letter.body_id}: {problem}", err=True)
    missing = set(ids or []) - {key for d in result.replayed + [r[0] for r in result.refused] for key in (d.message_id, str(d.body_id))}
    for key in sorted(missing):
        typer.echo(f"no dead letter with id {key}", err=True)
    typer.echo(f"{len(result.replayed)} replayed, {len(result.refused)} kept", err=True)
    raise typer.Exit(1 if result.refused or missing or not result.replayed else 0)


def run_all(
    channels: Path | None = typer.Option(None, "--channels", help="The channels file; defaults to $SWITCHBOARD_CHANNELS."),
    demo_sink: int = typer.Option(0, "--demo-sink", min=0, max=65535, help="Also run the demo sink on this port (0: no)."),
):
    """Every service of one host as a child process, restarted when it exits.

    Starts inbound, router, external, rest, one SMPP connector per connection in the channels file (plus the SMSC simulator for connections with `simulator: true`) and, with --demo-sink, the demo sink. A service whose code is not installed is skipped, with a log line. A child that exits is restarted after an exponential backoff (1 s doubling to 30 s). Ctrl-C or SIGTERM stops them all (SIGTERM, up to 10 s, then SIGKILL) and exits 0.
    """
    from ..core.logs import setup_logging
    from ..supervisor import run_all as supervise_all

    settings = get_settings()
    path = channels or Path(settings.channels_file)
    try:
        registry = load_channels(path)
    except ChannelsError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, settings.log_format, service="supervisor")
    raise typer.Exit(supervise_all(registry, str(path), demo_sink_port=demo_sink or None))


def register(app: typer.Typer, run_app: typer.Typer) -> None:
    """Add the operator commands to the `switchboard` app and `run all` to its `run` group."""
    app.command("send")(send)
    app.command("watch")(watch)
    app.add_typer(dead_app, name="dead")
    run_app.command("all")(run_all)
