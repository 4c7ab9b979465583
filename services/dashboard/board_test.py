"""The board: counts per window, errors, ratio and latency, the tail, workers, dead letters,
and the bounds that keep its memory flat."""

from __future__ import annotations

import orjson
import pytest

from . import board as board_module
from .board import MINUTES, TAIL_ROWS, Board

A = "a86f686f-9168-4dd9-a03e-77f11b265b56"
B = "0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
T0 = 1_800_000_000.0  # a whole minute


def status(channel=A, state="wired", msg_id=1, error=None, **extra) -> bytes:
    return orjson.dumps({"id": msg_id, "channel_uuid": channel, "status": state, "error": error, **extra})


def counts(board: Board, channel: str, window: str, now: float) -> dict:
    return next(c for c in board.snapshot(now)["channels"] if c["uuid"] == channel)[window]


# (label, [(seconds after T0, body)], seconds after T0 to read, channel, expected {status: (last5, last60)})
WINDOW_CASES = [
    ("one wired", [(0, status())], 1, A, {"wired": (1, 1)}),
    ("two channels apart", [(0, status()), (0, status(B, "failed"))], 1, B, {"failed": (1, 1), "wired": (0, 0)}),
    ("six minutes old: out of 5, in 60", [(0, status(state="delivered"))], 6 * 60, A, {"delivered": (0, 1)}),
    ("an hour old: out of both", [(0, status(state="sent")), (3600, status(state="queued"))], 3600, A,
     {"sent": (0, 0), "queued": (1, 1)}),
    ("a slot reused after an hour is reset", [(0, status()), (3600, status()), (3601, status())], 3602, A, {"wired": (2, 2)}),
]


@pytest.mark.parametrize("label,feed,at,channel,expected", WINDOW_CASES, ids=[c[0] for c in WINDOW_CASES])
def test_counts_by_window(label, feed, at, channel, expected):
    board = Board()
    for offset, body in feed:
        assert board.add_status(body, T0 + offset)
    for state, (five, sixty) in expected.items():
        assert counts(board, channel, "last5", T0 + at)[state] == five
        assert counts(board, channel, "last60", T0 + at)[state] == sixty


BAD_BODIES = [b"not json", b"[]", b'{"channel_uuid": "x"}', b'{"channel_uuid": "x", "status": "lost"}',
              b'{"channel_uuid": 5, "status": "wired"}', b'"wired"']


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_status_bodies_are_counted_not_kept(body):
    board = Board()
    assert not board.add_status(body, T0)
    assert board.rejected == 1 and board.channels == {} and not board.tail


def test_last_error_ratio_and_latency():
    board = Board()
    board.add_status(status(msg_id=1), T0)
    board.add_status(status(msg_id=2), T0)
    board.add_status(status(msg_id=1, state="delivered"), T0 + 2)
    board.add_status(status(msg_id=2, state="failed", error={"code": "dlr_UNDELIV", "message": "no"}), T0 + 3)
    row = board.snapshot(T0 + 4)["channels"][0]
    assert row["ratio"] == 0.5
    assert row["latency"]["avg_ms"] == 2000.0 and row["latency"]["n"] == 1
    assert row["last_error"]["code"] == "dlr_UNDELIV" and row["last_error"]["status"] == "failed"
    assert sum(row["series"]["wired"]) == 2 and len(row["series"]["wired"]) == MINUTES


def test_tail_is_filtered_and_bounded():
    board = Board()
    for i in range(TAIL_ROWS + 50):
        board.add_status(status(A if i % 2 else B, "failed" if i % 3 == 0 else "wired", msg_id=i), T0)
    assert len(board.tail) == TAIL_ROWS
    rows = board.tail_rows(channel=A, status="failed", limit=1000)
    assert rows and all(r["channel"] == A and r["status"] == "failed" for r in rows)
    newest = board.tail_rows(limit=5)
    assert [r["seq"] for r in newest] == list(range(board.seq - 4, board.seq + 1))
    assert board.tail_rows(after=board.seq) == []


def test_pending_wired_and_channels_are_bounded(monkeypatch):
    monkeypatch.setattr(board_module, "MAX_PENDING", 100)
    monkeypatch.setattr(board_module, "MAX_CHANNELS", 3)
    board = Board()
    for i in range(1000):
        board.add_status(status(msg_id=i), T0)
    assert len(board.wired_at) == 100 and (A, 999) in board.wired_at and (A, 0) not in board.wired_at
    for channel in ("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
                    "33333333-3333-4333-8333-333333333333"):
        board.add_status(status(channel), T0)
    assert len(board.channels) == 3 and A in board.channels  # the busiest channel stays


def heartbeat(instance="w-1", **extra) -> bytes:
    return orjson.dumps({"service": "router", "instance": instance, "host": "h", "pid": 1, "started_on": "x",
                         "interval_s": 5, "queues": ["p.outbound.router"], **extra})


def test_workers_go_stale_after_three_missed_heartbeats_and_are_forgotten_later():
    board = Board()
    board.add_heartbeat(heartbeat(), T0)
    board.add_heartbeat(heartbeat("smpp-1", connection="demo", protocol="smpp", state="bound", window=2), T0)
    assert all(w["alive"] for w in board.snapshot(T0 + 15)["workers"])
    snap = board.snapshot(T0 + 15.5)
    assert not any(w["alive"] for w in snap["workers"])
    assert [b["connection"] for b in snap["binds"]] == ["demo"]
    assert board.queue_names(["p.dead.letters"]) == ["p.dead.letters", "p.outbound.router"]
    assert board.snapshot(T0 + 601)["workers"] == []
    assert not board.add_heartbeat(b'{"service": "x"}', T0) and board.rejected == 1


def test_dead_letter_reasons_are_grouped_and_bounded(monkeypatch):
    monkeypatch.setattr(board_module, "MAX_REASONS", 2)
    board = Board()
    board.add_dead({"x-error": "id: Field required"}, "send.x")
    board.add_dead({"x-error": b"id: Field required"}, "send.x")
    board.add_dead({"x-death": [{"reason": "delivery_limit", "queue": "p.transport.external"}]}, "external")
    board.add_dead({"x-error": "something else"}, "send.x")
    board.add_dead(None, "send.x")
    reasons = {r["reason"]: r["count"] for r in board.snapshot(T0)["dead"]["reasons"]}
    assert reasons == {"id: Field required": 2, "delivery_limit in p.transport.external": 1, "other reasons": 2}
    assert board.dead_seen == 5
