"""Run the SMSC simulator as a process: ``python -m services.smsc_simulator`` or
``switchboard smsc-sim`` (both call :func:`smsc_sim`). Logs JSON lines on stdout and exits 0
on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

import typer

from services.protocols.smpp import status_code

from .simulator import SmscSimulator

log = logging.getLogger("switchboard.smsc_simulator")


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        prefix, sep, value = item.partition("=")
        if not sep or not prefix or not value:
            raise typer.BadParameter(f"{what} must look like PREFIX=VALUE, got {item!r}")
        out[prefix.strip()] = value.strip()
    return out


def _setup_logging(level: str) -> None:
    try:
        from services.core.logs import setup_logging
    except ImportError:  # pragma: no cover - core not available
        logging.basicConfig(level=level.upper(), format='{"level":"%(levelname)s","msg":"%(message)s"}')
        return
    setup_logging(level, "json", service="smsc-sim")


async def serve(sim: SmscSimulator) -> None:
    """Start ``sim``, run until SIGTERM/SIGINT, stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    try:
        await stop.wait()
    finally:
        log.info("stopping on signal")
        await sim.stop()


def smsc_sim(
    host: str = typer.Option("127.0.0.1", help="SMPP listen address."),
    port: int = typer.Option(2775, help="SMPP port (0: ephemeral)."),
    control_port: int = typer.Option(2776, help="HTTP control port (-1: no control interface; 0: ephemeral)."),
    system_id: str | None = typer.Option(None, help="Only this system_id may bind (default: any)."),
    password: str | None = typer.Option(None, envvar="SMSC_SIM_PASSWORD", help="Password for --system-id."),
    receipt_delay: float = typer.Option(0.5, help="Seconds before a delivery receipt is sent."),
    id_format: str = typer.Option("hex", help="submit_sm_resp message_id: hex | dec."),
    dlr_id_format: str = typer.Option("same", help="Receipt id: same | hex | dec."),
    tps_limit: float = typer.Option(0, help="submit_sm per second before ESME_RTHROTTLED (0: no limit)."),
    error_prefix: list[str] | None = typer.Option(None, help="PREFIX=STATUS, e.g. +999=ESME_RINVDSTADR (repeatable)."),
    receipt_rule: list[str] | None = typer.Option(None, help="PREFIX=STAT, e.g. +2507=UNDELIV (repeatable)."),
    receipt_retry_delay: float = typer.Option(1.0, help="Seconds before a refused receipt is sent again."),
    receipt_max_retries: int = typer.Option(3, help="How often a refused receipt is sent again."),
    tls_cert: str | None = typer.Option(None, help="PEM certificate (chain): the SMPP port speaks TLS."),
    tls_key: str | None = typer.Option(None, help="PEM private key of --tls-cert."),
    log_level: str = typer.Option("INFO", envvar="LOG_LEVEL", help="Log level."),
) -> None:
    """Run the bundled SMSC simulator (SMPP 3.4 over TCP plus an HTTP control interface)."""
    _setup_logging(log_level)
    if id_format not in ("hex", "dec") or dlr_id_format not in ("same", "hex", "dec"):
        raise typer.BadParameter("--id-format is hex|dec and --dlr-id-format same|hex|dec")
    try:
        errors = {p: status_code(s) for p, s in _pairs(error_prefix, "--error-prefix").items()}
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if bool(tls_cert) != bool(tls_key):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    context = None
    if tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise typer.BadParameter(f"--tls-cert/--tls-key: {exc}") from None
    sim = SmscSimulator(
        host, port, control_port=None if control_port < 0 else control_port,
        accounts={system_id: password or ""} if system_id else None,
        id_format=id_format, dlr_id_format=dlr_id_format, receipt_delay=receipt_delay,
        receipt_retry_delay=receipt_retry_delay, receipt_max_retries=receipt_max_retries,
        faults={"tps_limit": tps_limit, "error_by_prefix": errors,
                "receipt_rules": _pairs(receipt_rule, "--receipt-rule")},
        ssl=context,
    )
    asyncio.run(serve(sim))


def main() -> None:
    typer.run(smsc_sim)
