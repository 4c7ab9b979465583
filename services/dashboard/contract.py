"""`/contract`: the AsyncAPI document as a readable page, rendered here (no CDN, no script).

One section per channel (exchange or queue, its address, AMQP bindings and description), the
operations on it (who sends, who receives), and every message's payload schema.
"""

from __future__ import annotations

from html import escape

import orjson

STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em;color:#1f2328}"
    "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #d0d7de}h3{font-size:1em;margin:1.2em 0 .3em}"
    "code,pre{font-family:ui-monospace,monospace;font-size:.9em}pre{background:#f6f8fa;padding:.6em;overflow-x:auto;border-radius:6px}"
    ".op{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:.85em}.send{background:#0969da}.receive{background:#1a7f37}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}"
)


def _json(value) -> str:
    return escape(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def render_contract(doc: dict) -> str:
    info = doc.get("info", {})
    channels = doc.get("channels", {})
    operations = doc.get("operations", {})
    messages = doc.get("components", {}).get("messages", {})
    schemas = doc.get("components", {}).get("schemas", {})
    ops_by_channel: dict[str, list[tuple[str, dict]]] = {}
    for name, op in operations.items():
        ops_by_channel.setdefault(_ref_name(op.get("channel", {}).get("$ref", "")), []).append((name, op))
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Switchboard contract (AsyncAPI)</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', ''))} <small>{escape(str(info.get('version', '')))}</small></h1>",
        f"<p>AsyncAPI {escape(str(doc.get('asyncapi', '')))}; download <a href=contract.yaml>contract.yaml</a>; "
        "<a href=./>back to the dashboard</a>.</p>",
        f"<p>{escape(info.get('description', '') or '')}</p>",
        "<h2>Channels</h2><table><tr><th>channel</th><th>address</th><th>operations</th></tr>",
    ]
    for name, channel in channels.items():
        ops = " ".join(f"<span class='op {escape(op.get('action', ''))}'>{escape(op.get('action', ''))}</span>"
                       for _, op in ops_by_channel.get(name, []))  # fmt: skip
        out.append(f"<tr><td><a href='#ch-{escape(name)}'>{escape(name)}</a></td><td><code>{escape(channel.get('address') or '')}</code></td><td>{ops}</td></tr>")
    out.append("</table>")
    for name, channel in channels.items():
        out.append(f"<h2 id='ch-{escape(name)}'>{escape(name)}</h2>")
        out.append(f"<p>Address (routing key): <code>{escape(channel.get('address') or '')}</code></p>")
        if channel.get("description"):
            out.append(f"<p>{escape(channel['description'])}</p>")
        amqp = channel.get("bindings", {}).get("amqp")
        if amqp:
            out.append(f"<h3>AMQP binding</h3><pre>{_json(amqp)}</pre>")
        for op_name, op in ops_by_channel.get(name, []):
            out.append(f"<h3><span class='op {escape(op.get('action', ''))}'>{escape(op.get('action', ''))}</span> {escape(op_name)}</h3>")
            if op.get("description"):
                out.append(f"<p>{escape(op['description'])}</p>")
            for ref in op.get("messages", []):
                msg_ref = channel.get("messages", {}).get(_ref_name(ref.get("$ref", "")), {}).get("$ref", "")
                message = messages.get(_ref_name(msg_ref), {})
                payload = _ref_name(message.get("payload", {}).get("$ref", "")) or "(inline)"
                out.append(f"<p>Body: <a href='#schema-{escape(payload)}'>{escape(payload)}</a></p>")
    out.append("<h2>Bodies</h2>")
    for name, schema in schemas.items():
        out.append(f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3><pre>{_json(schema)}</pre>")
    out.append("</body></html>")
    return "".join(out)
