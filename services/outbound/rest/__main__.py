"""`python -m services.outbound.rest [--aggregator NAME]...`: the REST connector."""

from .connector import cli

cli()
