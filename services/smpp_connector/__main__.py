"""`python -m services.smpp_connector --connection NAME`: hold the bind of one SMPP connection."""

from .connector import main

main()
