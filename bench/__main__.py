"""`make bench` / `python -m bench [scenario ...]`: run scenarios, print one table.

A scenario is a module in bench/scenarios/ with `run() -> list[Row]`; each measures its own
baseline in the same run and fills `Row.ratio`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench import scenarios
from bench.common import table


def main(argv: list[str]) -> int:
    available = sorted(m.name for m in pkgutil.iter_modules(scenarios.__path__))
    chosen = [name.replace("-", "_") for name in argv] or available  # `front-door` is front_door.py
    unknown = [c for c in chosen if c not in available]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    rows = []
    for name in chosen:
        print(f"== {name}", file=sys.stderr, flush=True)
        rows.extend(importlib.import_module(f"bench.scenarios.{name}").run())
    out = table(rows)
    print(out)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / time.strftime("%Y%m%d-%H%M%S.md")).write_text(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
