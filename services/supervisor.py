"""`switchboard run all`: every service of one host as a child process, kept alive.

The table of what runs lives in :func:`plan` and nowhere else. A service whose module does
not exist (or cannot be started with `python -m`) is skipped with a log line, so a checkout
without, say, the REST connector still runs the rest. A child that exits is started again
after an exponential backoff (reset once it has stayed up for a while). On Ctrl-C or SIGTERM
every child gets SIGTERM, has up to 10 s to finish what it holds, then gets SIGKILL; the
supervisor then exits 0. A SIGHUP is passed on to the workers that reload the channels file
on it (RELOADS_ON_SIGHUP). Children write their JSON lines straight to the shared stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .core.channels import Registry

log = logging.getLogger("services.supervisor")

STOP_GRACE_S = 10.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 30.0
BANNER_AFTER_S = 8.0  # the next-steps lines come after the children's start-up lines  # a child that ran this long before exiting restarts after the first delay again
_MAIN_GUARD = re.compile(r"""if\s+__name__\s*==\s*["']__main__["']""")


@dataclass(frozen=True)
class Service:
    """One child process: a log name, the module `python -m` runs, and its arguments."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    cli: tuple[str, ...] | None = None  # the `switchboard ...` command, used when the module has no __main__
    env: tuple[tuple[str, str], ...] = ()  # extra environment, e.g. secrets that must not show in `ps`


def plan(registry: Registry, *, demo_sink_port: int | None = None) -> list[Service]:
    """Every service `run all` starts for this channels file: THE service table."""
    services = [
        Service("inbound", "services.inbound", cli=("run", "inbound")),
        Service("router", "services.outbound.router", cli=("run", "router")),
        Service("external", "services.outbound.external", cli=("run", "external")),
        Service("rest", "services.outbound.rest", cli=("run", "rest")),
        Service("dashboard", "services.dashboard", cli=("run", "dashboard")),
    ]
    if registry.doors:  # the front doors' callbacks (CONTRACT section 10)
        services.append(Service("callbacks", "services.outbound.callbacks", cli=("run", "callbacks")))
    for connection in registry.connections.values():
        protocol = connection.protocol  # smpp | ucp | cimd2
        if connection.simulator:
            account = connection.system_id if protocol == "smpp" else connection.username
            services.append(
                Service(
                    f"smsc-sim.{connection.name}",
                    "services.smsc_simulator",
                    (
                        "--host", connection.host,
                        "--port", str(connection.port),
                        "--control-port", str(connection.port + 1),
                        "--system-id", account,
                        *(("--protocol", protocol) if protocol != "smpp" else ()),
                    ),
                    env=(("SMSC_SIM_PASSWORD", connection.password),),
                )
            )
        services.append(
            Service(
                f"{protocol}.{connection.name}",
                f"services.{protocol}_connector",
                ("--connection", connection.name),
                cli=("run", protocol),
            )
        )
    if demo_sink_port:
        services.append(Service("demo-sink", "services.demo_sink", ("--port", str(demo_sink_port))))
    return services


def _has_cli_command(path: tuple[str, ...]) -> bool:
    """Whether `switchboard <path>` is a registered command (e.g. `run router`)."""
    from . import cli

    group = cli.app
    for part in path[:-1]:
        matches = [g.typer_instance for g in group.registered_groups if g.name == part]
        if not matches:
            return False
        group = matches[0]
    names = {c.name or c.callback.__name__.replace("_", "-") for c in group.registered_commands}
    return path[-1] in names


def command_for(service: Service) -> list[str] | None:
    """The argv that starts `service`, or None when its code is not there (yet)."""
    try:
        spec = importlib.util.find_spec(service.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    if spec.submodule_search_locations is not None:  # a package: runnable when it has __main__
        runnable = importlib.util.find_spec(f"{service.module}.__main__") is not None
    else:
        source = spec.loader.get_source(service.module) if spec.loader else None
        runnable = bool(source and _MAIN_GUARD.search(source))
    if runnable:
        return [sys.executable, "-m", service.module, *service.args]
    if service.cli and _has_cli_command(service.cli):
        return [sys.executable, "-m", "services.cli", *service.cli, *service.args]
    return None


#: `switchboard run X` workers that re-read the channels file on SIGHUP (core/service.py, the
#: inbound server). Others (the simulator, the dashboard, the demo sink) would die of it.
RELOADS_ON_SIGHUP = frozenset({"inbound", "router", "external", "rest", "callbacks", "smpp", "ucp", "cimd2"})


class Child:
    """One supervised process and its restart loop."""

    def __init__(self, service: Service, argv: list[str], env: dict[str, str]):
        self.service = service
        self.argv = argv
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def run(self, stopping: asyncio.Event, grace: float) -> None:
        """Start, wait, restart with backoff; once `stopping` is set, stop the process and return."""
        failures = 0
        while not stopping.is_set():
            started = time.monotonic()
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which then
            # stops the children in order instead of racing them.
            try:
                self.process = await asyncio.create_subprocess_exec(*self.argv, env=self.env, process_group=0)
            except OSError as exc:
                self.process, returncode = None, f"not started: {exc}"
            else:
                log.info("service started", extra={"child": self.service.name, "pid": self.process.pid, "argv": self.argv[1:]})
                exited = asyncio.ensure_future(self.process.wait())
                stop = asyncio.ensure_future(stopping.wait())
                await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if stopping.is_set():
                    exited.cancel()
                    await self.stop(grace)
                    return
                returncode = exited.result()
            failures = 1 if time.monotonic() - started >= STABLE_AFTER_S else failures + 1
            delay = min(BACKOFF_FIRST_S * 2 ** (failures - 1), BACKOFF_MAX_S)
            self.restarts += 1
            log.warning(
                "service exited; restarting",
                extra={"child": self.service.name, "pid": self.process.pid if self.process else None, "returncode": returncode,
                       "restart_in_s": delay, "restarts": self.restarts},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)

    def reload(self) -> None:
        """Pass a SIGHUP on to a worker that reloads its channels file on it. A channel or
        connection that needs a new process (a new SMSC connection) needs a restart."""
        process = self.process
        cli = self.service.cli or ()
        if process is None or process.returncode is not None:
            return
        if len(cli) >= 2 and cli[0] == "run" and cli[1] in RELOADS_ON_SIGHUP:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGHUP)

    async def stop(self, grace: float) -> None:
        """SIGTERM, up to `grace` seconds to finish, then SIGKILL."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), grace)
            log.info("service stopped", extra={"child": self.service.name, "pid": process.pid, "returncode": code})
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            log.warning("service killed: it did not stop in time", extra={"child": self.service.name, "pid": process.pid, "grace_s": grace})


def next_steps(registry: Registry, env: dict[str, str], *, demo: bool = False) -> list[str]:
    """What to do once everything runs: the dashboard, each channel's receive URLs, and the
    commands that send a message and inject one (printed at the end of the start-up)."""
    from .core.channels import receive_urls
    from .core.settings import Settings

    settings = Settings(**{k: v for k, v in env.items() if k in ("DASHBOARD_HOST", "DASHBOARD_PORT", "SWITCHBOARD_PUBLIC_URL")})
    host = "127.0.0.1" if settings.dashboard_host in ("0.0.0.0", "::") else settings.dashboard_host
    lines = ["", "Switchboard is running. Next:", f"  dashboard        http://{host}:{settings.dashboard_port}/"]
    for channel in registry.channels.values():
        urls = receive_urls(channel, settings.public_base)
        if "receive" in urls:
            lines.append(f"  {channel.name or channel.uuid}: receive {urls['receive']}")
        if channel.type == "smpp":
            lines.append(f"  send (SMPP)      switchboard send --channel {channel.uuid} --to +250788123123 --text hi --wait")
        elif channel.type == "external":
            lines.append(f"  send (external)  switchboard send --channel {channel.uuid} --to +250788123123 --text hi --wait")
    if demo:
        lines += ["  or               make demo-send", "  inject an MO     make demo-mo   (the example flow engine answers it)"]
    for connection in registry.connections.values():
        if connection.simulator:
            lines.append(f"  simulator        POST http://{connection.host}:{connection.port + 1}/mo  {{\"from\": \"+250788123123\", \"to\": \"...\", \"text\": \"hi\"}}")
    lines += ["  stop             Ctrl-C", ""]
    return lines


async def supervise(
    services: list[Service], env: dict[str, str], *, grace: float = STOP_GRACE_S, banner: list[str] | None = None
) -> int:
    """Run `services` until SIGINT/SIGTERM; 0 after a clean stop, 1 when nothing could start.
    `banner`: lines printed once the children had a few seconds to start."""
    children = []
    for service in services:
        argv = command_for(service)
        if argv is None:
            log.warning("service skipped: its module is not installed or not runnable", extra={"child": service.name, "python_module": service.module})
            continue
        children.append(Child(service, argv, {**env, **dict(service.env)}))
    if not children:
        log.error("no service to run")
        return 1
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: [child.reload() for child in children])
    loops = [asyncio.ensure_future(child.run(stopping, grace)) for child in children]
    if banner:
        loop.call_later(BANNER_AFTER_S, lambda: stopping.is_set() or print("\n".join(banner), flush=True))
    await stopping.wait()
    log.info("stopping every service", extra={"children": len(children), "grace_s": grace})
    for outcome in await asyncio.gather(*loops, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.error("a service did not stop cleanly", extra={"error": repr(outcome)})
    log.info("all services stopped")
    return 0


def run_all(registry: Registry, channels_file: str, *, demo_sink_port: int | None = None) -> int:
    """Entry point of `switchboard run all` (the channels file is already validated)."""
    env = dict(os.environ)
    env["SWITCHBOARD_CHANNELS"] = str(Path(channels_file).resolve())
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the shared stdout as they are written
    banner = next_steps(registry, env, demo=bool(demo_sink_port))
    return asyncio.run(supervise(plan(registry, demo_sink_port=demo_sink_port), env, banner=banner))
