"""Operator tools behind `switchboard send`, `watch` and `dead`, and the broker check of `make run`.

Each module is a plain async function over a broker connection; `commands.py` is the thin
typer shell that turns their results into lines and exit codes.
"""
