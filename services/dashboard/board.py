"""What the dashboard knows, in bounded memory: plain Python, no I/O (the feeds fill it).

Whatever the traffic, memory stays bounded: statuses are counted into one ring of 60
one-minute slots per channel (at most MAX_CHANNELS channels), the tail keeps TAIL_ROWS rows,
`wired` times wait for their `delivered` in a map of at most MAX_PENDING entries (the oldest
is forgotten first), dead-letter reasons are grouped into at most MAX_REASONS, and workers
that stayed silent for FORGET_WORKER_S are forgotten.

Times are the dashboard's receive times: statuses arrive within milliseconds of being
published, and no clock of another host is trusted.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from typing import Any

import orjson

STATUSES = ("queued", "wired", "sent", "delivered", "errored", "failed")
STATUS_INDEX = {name: i for i, name in enumerate(STATUSES)}
MINUTES = 60
MAX_CHANNELS = 500
TAIL_ROWS = 200
MAX_PENDING = 50_000
LATENCY_SAMPLES = 256
MAX_REASONS = 30
FORGET_WORKER_S = 600
MAX_WORKERS = 500
STALE_AFTER_BEATS = 3


class ChannelStats:
    """One channel: counts per status in 60 one-minute slots, the last error, latencies."""

    __slots__ = ("minute", "counts", "latency_sum", "latency_n", "last_error", "latencies", "total")

    def __init__(self) -> None:
        self.minute = [-1] * MINUTES  # which minute each slot holds
        self.counts = [[0] * len(STATUSES) for _ in range(MINUTES)]
        self.latency_sum = [0.0] * MINUTES
        self.latency_n = [0] * MINUTES
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.last_error: dict[str, Any] | None = None
        self.total = 0

    def slot(self, minute: int) -> int:
        index = minute % MINUTES
        if self.minute[index] != minute:
            self.minute[index] = minute
            self.counts[index] = [0] * len(STATUSES)
            self.latency_sum[index] = 0.0
            self.latency_n[index] = 0
        return index

    def window(self, now_minute: int, minutes: int) -> list[int]:
        """Counts per status over the last `minutes` minutes (this one included)."""
        totals = [0] * len(STATUSES)
        for index in range(MINUTES):
            if now_minute - minutes < self.minute[index] <= now_minute:
                for i, n in enumerate(self.counts[index]):
                    totals[i] += n
        return totals

    def series(self, now_minute: int) -> list[list[int]]:
        """Per status, the counts of each of the last 60 minutes, oldest first."""
        out = [[0] * MINUTES for _ in STATUSES]
        for age in range(MINUTES):
            minute = now_minute - (MINUTES - 1 - age)
            index = minute % MINUTES
            if self.minute[index] == minute:
                for i, n in enumerate(self.counts[index]):
                    out[i][age] = n
        return out

    def latency(self, now_minute: int) -> dict[str, float | None]:
        total = sum(s for s, m in zip(self.latency_sum, self.minute, strict=True) if now_minute - MINUTES < m <= now_minute)
        count = sum(n for n, m in zip(self.latency_n, self.minute, strict=True) if now_minute - MINUTES < m <= now_minute)
        samples = sorted(self.latencies)
        return {
            "avg_ms": round(total / count * 1000, 1) if count else None,
            "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))] * 1000, 1) if samples else None,
            "n": count,
        }


class Board:
    """Everything the page shows; `snapshot()` is what the live stream sends each second."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.channels: dict[str, ChannelStats] = {}
        self.tail: deque[dict[str, Any]] = deque(maxlen=TAIL_ROWS)
        self.seq = 0
        self.statuses = 0
        self.rejected = 0
        self.wired_at: OrderedDict[tuple, float] = OrderedDict()
        self.workers: dict[str, tuple[dict[str, Any], float]] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.dead_seen = 0
        self.dead_reasons: Counter[str] = Counter()

    # ------------------------------------------------------------------ feeds

    def add_status(self, body: bytes, now: float | None = None) -> bool:
        """Count one StatusUpdate body; False (and counted in `rejected`) when it is not one."""
        try:
            data = orjson.loads(body)
            channel = data["channel_uuid"]
            index = STATUS_INDEX[data["status"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.rejected += 1
            return False
        if not isinstance(channel, str):
            self.rejected += 1
            return False
        now = self.clock() if now is None else now
        stats = self.channels.get(channel)
        if stats is None:
            stats = self._new_channel(channel)
        slot = stats.slot(int(now // 60))
        stats.counts[slot][index] += 1
        stats.total += 1
        self.statuses += 1
        msg_id = data.get("id")
        if msg_id is None:
            msg_id = data.get("uuid") or data.get("external_id")
        error = data.get("error")
        code = None
        if isinstance(error, dict):
            code = error.get("code")
            stats.last_error = {"code": code, "message": str(error.get("message") or "")[:300], "status": data["status"], "at": now}
        if msg_id is not None and not isinstance(msg_id, list | dict):
            key = (channel, msg_id)
            if index == 1:  # wired
                self.wired_at[key] = now
                if len(self.wired_at) > MAX_PENDING:
                    self.wired_at.popitem(last=False)
            elif index == 3 or index == 5:  # delivered, failed: the message is settled
                wired = self.wired_at.pop(key, None)
                if wired is not None and index == 3:
                    latency = now - wired
                    stats.latency_sum[slot] += latency
                    stats.latency_n[slot] += 1
                    stats.latencies.append(latency)
        self.seq += 1
        self.tail.append({"seq": self.seq, "at": now, "channel": channel, "status": data["status"],
                          "id": msg_id if isinstance(msg_id, int | str) else None, "code": code})  # fmt: skip
        return True

    def _new_channel(self, channel: str) -> ChannelStats:
        if len(self.channels) >= MAX_CHANNELS:  # forget the quietest channel
            quietest = min(self.channels, key=lambda c: self.channels[c].total)
            del self.channels[quietest]
        stats = self.channels[channel] = ChannelStats()
        return stats

    def add_heartbeat(self, body: bytes, now: float | None = None) -> bool:
        try:
            data = orjson.loads(body)
            instance = data["instance"]
            float(data.get("interval_s", 5))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.rejected += 1
            return False
        if not isinstance(instance, str):
            self.rejected += 1
            return False
        now = self.clock() if now is None else now
        if instance not in self.workers and len(self.workers) >= MAX_WORKERS:
            oldest = min(self.workers, key=lambda i: self.workers[i][1])
            del self.workers[oldest]
        self.workers[instance] = (data, now)
        return True

    def add_dead(self, headers: dict[str, Any] | None, routing_key: str) -> None:
        """One message that reached sms.dead: its reason is `x-error`, or the broker's `x-death`."""
        headers = headers or {}
        reason = headers.get("x-error")
        if reason is None and headers.get("x-death"):
            death = headers["x-death"][0] if isinstance(headers["x-death"], list) else {}
            reason = f"{death.get('reason', 'dead-lettered')} in {death.get('queue', '?')}"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        reason = (str(reason) if reason else "no reason given")[:160]
        self.dead_seen += 1
        if reason not in self.dead_reasons and len(self.dead_reasons) >= MAX_REASONS:
            reason = "other reasons"
        self.dead_reasons[reason] += 1

    def set_queue(self, name: str, messages: int | None, consumers: int | None, now: float | None = None) -> None:
        """A passive declare's answer; None when the queue does not exist."""
        self.queues[name] = {"name": name, "messages": messages, "consumers": consumers, "exists": messages is not None,
                             "at": self.clock() if now is None else now}  # fmt: skip

    # ------------------------------------------------------------------ reading

    def worker_rows(self, now: float) -> list[dict[str, Any]]:
        rows = []
        for instance, (data, seen) in list(self.workers.items()):
            age = now - seen
            if age > FORGET_WORKER_S:
                del self.workers[instance]
                continue
            interval = float(data.get("interval_s") or 5)
            rows.append({
                "instance": instance, "service": data.get("service"), "host": data.get("host"), "pid": data.get("pid"),
                "alive": age <= STALE_AFTER_BEATS * interval, "age_s": round(age, 1), "queues": data.get("queues") or [],
                "in_flight": data.get("in_flight"), "counters": data.get("counters") or {}, "started_on": data.get("started_on"),
                **{k: data.get(k) for k in ("connection", "protocol", "state", "window", "window_max", "tps", "tps_limit", "last_error")},
            })  # fmt: skip
        rows.sort(key=lambda r: (str(r["service"]), r["instance"]))
        return rows

    def queue_names(self, defaults: list[str]) -> list[str]:
        """The queues worth a passive declare: the defaults and every queue a worker consumes."""
        names = set(defaults)
        for data, _ in self.workers.values():
            names.update(q for q in data.get("queues") or [] if isinstance(q, str))
        return sorted(names)

    def tail_rows(self, after: int = 0, channel: str | None = None, status: str | None = None, limit: int = 50) -> list[dict]:
        rows = [r for r in self.tail if r["seq"] > after and (not channel or r["channel"] == channel)
                and (not status or r["status"] == status)]  # fmt: skip
        return rows[-limit:]

    def snapshot(self, now: float | None = None, max_channels: int = 30) -> dict[str, Any]:
        now = self.clock() if now is None else now
        minute = int(now // 60)
        channels = []
        busiest = sorted(self.channels.items(), key=lambda item: -sum(item[1].window(minute, MINUTES)))[:max_channels]
        for uuid, stats in busiest:
            last5, last60 = stats.window(minute, 5), stats.window(minute, MINUTES)
            delivered, failed = last60[STATUS_INDEX["delivered"]], last60[STATUS_INDEX["failed"]]
            channels.append({
                "uuid": uuid,
                "last5": dict(zip(STATUSES, last5, strict=True)),
                "last60": dict(zip(STATUSES, last60, strict=True)),
                "series": dict(zip(STATUSES, stats.series(minute), strict=True)),
                "ratio": round(delivered / (delivered + failed), 4) if delivered + failed else None,
                "latency": stats.latency(minute),
                "last_error": stats.last_error,
            })  # fmt: skip
        workers = self.worker_rows(now)
        return {
            "now": now,
            "statuses": self.statuses,
            "rejected": self.rejected,
            "channels": channels,
            "workers": workers,
            "binds": [w for w in workers if w.get("connection")],
            "queues": sorted(self.queues.values(), key=lambda q: q["name"]),
            "dead": {"seen": self.dead_seen, "reasons": [{"reason": r, "count": n} for r, n in self.dead_reasons.most_common()]},
        }
