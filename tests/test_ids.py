"""new_uuid and now_iso are on every published body: cheap, but still UUID v7 and RFC 3339."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

from services.core.models import UUID_RE, new_uuid, now_iso


def test_new_uuid_is_a_v7_uuid_carrying_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    ids = [new_uuid() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert UUID_RE.match(value) and str(parsed) == value
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    assert ids == sorted(ids, key=lambda v: uuid.UUID(v).int >> 80)  # time-ordered by millisecond


def test_a_forked_child_does_not_repeat_the_parents_ids():
    new_uuid()  # the parent's pool of random digits is filled
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write the ids it makes next, then leave at once
        os.write(write_end, ",".join(new_uuid() for _ in range(50)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split(",")
    parent = [new_uuid() for _ in range(50)]
    assert len(child) == 50
    assert not {c[14:] for c in child} & {p[14:] for p in parent}  # the random part


def test_now_iso_is_utc_with_milliseconds_and_follows_the_clock():
    before = datetime.now(UTC)
    stamp = now_iso()
    assert len(stamp) == 24 and stamp.endswith("Z") and stamp[10] == "T" and stamp[19] == "."
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs((parsed - before).total_seconds()) < 1
    time.sleep(1.01)  # the cached second moves on
    assert datetime.fromisoformat(now_iso().replace("Z", "+00:00")) > parsed
