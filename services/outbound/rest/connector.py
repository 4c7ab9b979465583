"""The REST connector worker: `switchboard run rest [--aggregator NAME]...`.

It consumes `transport.rest.<name>` for every aggregator (or those named) through the shared
HTTP sender, so retries, de-duplication, TPS, the SSRF guard, ChannelLogs and the `ext:`
correlation records are exactly the external connector's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ...providers import ADAPTERS
from ...providers.base import RestAdapter
from ..sender import run_adapters


def adapters_for(names: Sequence[str] = ()) -> list[RestAdapter]:
    """The adapters to run: all six, or those named (ValueError naming the unknown ones)."""
    chosen = list(dict.fromkeys(names)) or list(ADAPTERS)
    unknown = [name for name in chosen if name not in ADAPTERS]
    if unknown:
        raise ValueError(f"unknown aggregator(s): {', '.join(unknown)} (known: {', '.join(ADAPTERS)})")
    return [ADAPTERS[name] for name in chosen]


def main(aggregators: Sequence[str] = ()) -> None:
    try:
        adapters = adapters_for(aggregators)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    run_adapters("rest", adapters)


def cli(argv: Sequence[str] | None = None) -> None:
    """`python -m services.outbound.rest [--aggregator NAME]...`"""
    parser = argparse.ArgumentParser(prog="python -m services.outbound.rest", description=__doc__.splitlines()[0])
    parser.add_argument("--aggregator", action="append", default=[], metavar="NAME", help="repeatable; default: all six")
    main(parser.parse_args(argv).aggregator)
