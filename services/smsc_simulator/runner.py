"""Run the SMSC simulator as a process: ``python -m services.smsc_simulator`` or
``switchboard smsc-sim`` (both call :func:`smsc_sim`). Logs JSON lines on stdout and exits 0
on SIGTERM / SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl

import typer

from .base import SimulatorBase
from .cimd2 import Cimd2Simulator
from .simulator import SmscSimulator
from .ucp import UcpSimulator

#: protocol -> (simulator class, default port)
PROTOCOLS: dict[str, tuple[type[SimulatorBase], int]] = {
    "smpp": (SmscSimulator, 2775),
    "ucp": (UcpSimulator, 5000),
    "cimd2": (Cimd2Simulator, 9971),
}

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
    setup_logging(level, os.environ.get("LOG_FORMAT", "json"), service="smsc-sim")


async def serve(sim: SimulatorBase) -> None:
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
    protocol: str = typer.Option("smpp", help="smpp | ucp | cimd2."),
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int | None = typer.Option(None, help="Port (0: ephemeral; default 2775 smpp, 5000 ucp, 9971 cimd2)."),
    control_port: int = typer.Option(2776, help="HTTP control port (-1: no control interface; 0: ephemeral)."),
    system_id: str | None = typer.Option(
        None, help="Only this account may log in (SMPP system_id, UCP OAdC of the OT 60, CIMD2 010; default: any)."),
    password: str | None = typer.Option(None, envvar="SMSC_SIM_PASSWORD", help="Password for --system-id."),
    receipt_delay: float = typer.Option(0.5, help="Seconds before a delivery receipt is sent."),
    id_format: str = typer.Option("hex", help="SMPP submit_sm_resp message_id: hex | dec."),
    dlr_id_format: str = typer.Option("same", help="SMPP receipt id: same | hex | dec."),
    tps_limit: float = typer.Option(
        0, help="Submits per second before the throttling error (SMPP ESME_RTHROTTLED, UCP NACK 04, "
                "CIMD2 900:10; 0: no limit)."),
    error_prefix: list[str] | None = typer.Option(
        None, help="PREFIX=ERROR, repeatable: +999=ESME_RINVDSTADR (smpp), +999=06 (ucp EC), +999=300 (cimd2)."),
    receipt_rule: list[str] | None = typer.Option(None, help="PREFIX=STAT, e.g. +2507=UNDELIV (repeatable)."),
    receipt_retry_delay: float = typer.Option(1.0, help="Seconds before a refused receipt is sent again."),
    receipt_max_retries: int = typer.Option(3, help="How often a refused receipt is sent again."),
    tls_cert: str | None = typer.Option(None, help="PEM certificate (chain): the SMSC port speaks TLS."),
    tls_key: str | None = typer.Option(None, help="PEM private key of --tls-cert."),
    log_level: str = typer.Option("INFO", envvar="LOG_LEVEL", help="Log level."),
) -> None:
    """Run the bundled SMSC simulator (SMPP 3.4, UCP/EMI or CIMD2 over TCP, plus an HTTP
    control interface that is the same for all three)."""
    _setup_logging(log_level)
    if protocol not in PROTOCOLS:
        raise typer.BadParameter(f"--protocol must be one of {', '.join(PROTOCOLS)}")
    if id_format not in ("hex", "dec") or dlr_id_format not in ("same", "hex", "dec"):
        raise typer.BadParameter("--id-format is hex|dec and --dlr-id-format same|hex|dec")
    cls, default_port = PROTOCOLS[protocol]
    try:
        errors = {p: cls.parse_error(s) for p, s in _pairs(error_prefix, "--error-prefix").items()}
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
    common: dict = dict(
        control_port=None if control_port < 0 else control_port,
        accounts={system_id: password or ""} if system_id else None,
        receipt_delay=receipt_delay, receipt_retry_delay=receipt_retry_delay,
        receipt_max_retries=receipt_max_retries,
        faults={"tps_limit": tps_limit, "error_by_prefix": errors,
                "receipt_rules": _pairs(receipt_rule, "--receipt-rule")},
        ssl=context,
    )
    if cls is SmscSimulator:
        common.update(id_format=id_format, dlr_id_format=dlr_id_format)
    sim = cls(host, default_port if port is None else port, **common)
    asyncio.run(serve(sim))


def main() -> None:
    typer.run(smsc_sim)
