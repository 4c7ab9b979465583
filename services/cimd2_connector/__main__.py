"""`python -m services.cimd2_connector --connection NAME`: hold the login of one CIMD2 connection."""

from .connector import main

main()
