"""Shared bench plumbing: isolated prefixes, service subprocesses, CPU accounting, tables.

Every scenario reports ratios against a baseline measured in the same invocation, because
the machine is shared and noisy: absolute numbers only mean something next to their baseline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def bench_env(**extra: str) -> dict[str, str]:
    """Environment for one scenario: its own SWITCHBOARD_PREFIX on the local broker."""
    env = dict(os.environ)
    env.setdefault("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    env["SWITCHBOARD_PREFIX"] = f"bench{uuid.uuid4().hex[:6]}."
    env["LOG_LEVEL"] = "WARNING"
    env["SEND_ALLOW_PRIVATE"] = "true"
    env.update(extra)
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / CLK_TCK


def start(args: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Row:
    scenario: str
    case: str
    rate: float  # messages (or requests) per second
    unit: str = "msg/s"
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms: dict[str, float] = field(default_factory=dict)  # process -> CPU ms per message
    ratio: float | None = None  # rate / the scenario's baseline rate
    note: str = ""


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | case | rate | x baseline | p50 ms | p99 ms | CPU ms/msg | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_ms.items()) or "-"
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        p50 = f"{r.p50_ms:.1f}" if r.p50_ms is not None else "-"
        p99 = f"{r.p99_ms:.1f}" if r.p99_ms is not None else "-"
        lines.append(f"| {r.scenario} | {r.case} | {r.rate:,.0f} {r.unit} | {ratio} | {p50} | {p99} | {cpu} | {r.note} |")
    return "\n".join(lines)


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
