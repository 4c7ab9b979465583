"""`make demo-mo`: inject a message from a phone at the SMSC simulator (its HTTP control
`POST /mo`), as if a subscriber had texted the demo SMPP channel."""

from __future__ import annotations

import argparse
import sys

import httpx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tools.demo_mo", description=__doc__.split("\n")[0])
    parser.add_argument("--control", default="http://127.0.0.1:2776", help="the simulator's HTTP control URL")
    parser.add_argument("--from", dest="sender", default="+250788123123")
    parser.add_argument("--to", default="1234", help="the channel's address")
    parser.add_argument("--text", default="Hello")
    args = parser.parse_args(argv)
    try:
        answer = httpx.post(f"{args.control.rstrip('/')}/mo", json={"from": args.sender, "to": args.to, "text": args.text}, timeout=10)
    except httpx.TransportError as exc:
        print(f"the SMSC simulator does not answer at {args.control} ({exc}); is `make run` going?", file=sys.stderr)
        return 1
    if answer.status_code == 409:
        print("the simulator has no bound receiver yet; wait for the SMPP connector to bind and try again", file=sys.stderr)
        return 1
    if answer.status_code != 200:
        print(f"the simulator refused the MO: {answer.status_code} {answer.text}", file=sys.stderr)
        return 1
    print(f"MO from {args.sender} to {args.to} injected: {answer.json().get('status_names')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
