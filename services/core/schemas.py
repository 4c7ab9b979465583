"""Generate `schemas/*.json` from the pydantic models: `python -m services.core.schemas --write`.

A test (tests/test_schemas.py) fails when the files and the models disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from .channels import ChannelsFile
from .models import BODIES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
# Bodies other programs write to us are described as input (defaults optional); the rest as
# we publish them (every field present).
INPUTS = {"channels", "send_request"}
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def generate() -> dict[str, dict]:
    out = {}
    for name, model in {**BODIES, "channels": ChannelsFile}.items():
        schema = model.model_json_schema(by_alias=True, mode="validation" if name in INPUTS else "serialization")
        out[name] = {"$schema": DIALECT, "$id": f"https://switchboard.dev/schemas/{name}.json", **schema}
    return out


def render(schema: dict) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str]) -> int:
    write = "--write" in argv
    stale = []
    for name, schema in generate().items():
        path = SCHEMA_DIR / f"{name}.json"
        data = render(schema)
        if write:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
        elif not path.exists() or path.read_bytes() != data:
            stale.append(path.name)
    if stale:
        print("out of date: " + ", ".join(stale) + " (run make schemas)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
