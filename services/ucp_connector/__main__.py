"""`python -m services.ucp_connector --connection NAME`: hold the login of one UCP connection."""

from .connector import main

main()
