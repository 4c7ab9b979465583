"""`switchboard run external`: the External API channel's worker (CONTRACT section 7).

The adapter (requests, templates, answers) is pure provider knowledge and lives in
services/providers/external.py; this module runs it on the shared sender.
"""

from __future__ import annotations

from ..providers.external import ExternalAdapter
from .sender import run_adapters


def main() -> None:
    """`switchboard run external` / `python -m services.outbound.external`."""
    run_adapters("external", [ExternalAdapter()])


if __name__ == "__main__":
    main()
