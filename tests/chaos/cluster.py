"""A real 3-node RabbitMQ cluster on loopback, for the failover tests (`make chaos`).

Each node is the installed RabbitMQ with its own node name (`<base><n>@localhost`), AMQP
port, distribution port, data and log folders and config file, run as the `rabbitmq` user
(which owns the Erlang cookie the default node uses too). Node 2 and 3 join node 1. The
default node `rabbit@localhost` on 5672 is never touched: every command here names its node.

`python -m tests.chaos.cluster up|down` starts or stops one by hand (ports printed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
HOME = "/var/lib/rabbitmq"  # the rabbitmq user's home: its .erlang.cookie


def available() -> str | None:
    """Why a cluster cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (nodes run as the rabbitmq user)"
    for path in (SERVER, CTL, f"{HOME}/.erlang.cookie"):
        if not os.path.exists(path):
            return f"{path} is missing"
    if shutil.which("runuser") is None:
        return "runuser is missing"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Node:
    name: str
    amqp_port: int
    dist_port: int
    base: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid_file(self) -> Path:
        return self.base / "pid"

    def env(self) -> dict[str, str]:
        return {
            "HOME": HOME, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }  # fmt: skip

    def prepare(self) -> None:
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users = none\n"
            "cluster_partition_handling = pause_minority\n"
        )
        (self.base / "advanced.config").write_text("[].\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(self.base)], check=True)

    def start(self) -> None:
        log = open(self.base / "server.out", "ab")
        self.proc = subprocess.Popen(
            ["runuser", "-u", "rabbitmq", "--", "env", "-i", *(f"{k}={v}" for k, v in self.env().items()), SERVER],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()

    def ctl(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        env = self.env()
        result = subprocess.run(
            ["runuser", "-u", "rabbitmq", "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), CTL, "-n", self.name, *args],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {self.name} {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def wait(self, timeout: float = 120) -> None:
        """Until the node's VM wrote its pid file and the broker app runs."""
        deadline = time.monotonic() + timeout
        while not self.pid_file.exists():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.base / 'server.out').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} wrote no pid file: {(self.base / 'server.out').read_text()[-3000:]}")
            time.sleep(0.2)
        self.ctl("wait", str(self.pid_file), "--timeout", str(int(timeout)), timeout=timeout + 10)

    def beam_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """kill -9 of the node's Erlang VM (what a crashed machine looks like to clients)."""
        pid = self.beam_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.ctl("stop", timeout=60, check=False)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Cluster:
    nodes: list[Node] = field(default_factory=list)
    folder: Path | None = None

    @classmethod
    def create(cls, size: int = 3, base_name: str | None = None) -> Cluster:
        folder = Path(tempfile.mkdtemp(prefix="sb-cluster-"))
        os.chmod(folder, 0o755)
        base_name = base_name or f"sb{os.getpid()}n"
        nodes = [Node(f"{base_name}{i}@localhost", _free_port(), _free_port(), folder / f"n{i}") for i in range(1, size + 1)]
        return cls(nodes, folder)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def up(self) -> None:
        for node in self.nodes:
            node.prepare()
            node.start()
        for node in self.nodes:
            node.wait()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait()
        status = first.ctl("cluster_status").stdout
        missing = [n.name for n in self.nodes if n.name not in status]
        if missing:
            raise RuntimeError(f"nodes not in the cluster: {missing}\n{status}")

    def down(self, keep_logs: Path | None = None) -> None:
        """Stop every node; their logs are copied to `keep_logs` first when given."""
        for node in self.nodes:
            try:
                node.stop()
            except Exception:
                node.kill()
        if keep_logs is not None:
            for node in self.nodes:
                shutil.copytree(node.base / "log", keep_logs / node.name, dirs_exist_ok=True)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["up"]:
        cluster = Cluster.create(base_name="sbmanual")
        started = time.monotonic()
        cluster.up()
        print(f"up in {time.monotonic() - started:.1f} s:", ",".join(cluster.urls), cluster.folder)
