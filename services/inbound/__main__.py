"""`python -m services.inbound`: the inbound HTTP edge (see server.py)."""

from .server import run

run()
