"""A readable API page rendered on the server from the OpenAPI document: no script, no CDN."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #dde}code,pre{font:13px ui-monospace,monospace}
pre{background:#f5f6f9;padding:.6rem;overflow:auto;border-radius:4px}
.op{margin:1rem 0;padding:.5rem 1rem;border:1px solid #dde;border-radius:6px}
.m{display:inline-block;min-width:4rem;font-weight:600;color:#fff;border-radius:3px;text-align:center;margin-right:.5rem}
.get{background:#2f7d4f}.post{background:#2f5d9d}.put,.patch{background:#9d6a2f}.delete{background:#9d2f2f}
table{border-collapse:collapse}td,th{border:1px solid #dde;padding:.2rem .5rem;text-align:left}
"""


def _schema_text(schema: dict[str, Any]) -> str:
    return escape(json.dumps(schema, indent=2))


def render_docs(spec: dict[str, Any], extra_html: str = "") -> str:
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(spec['info']['title'])} API</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(spec['info']['title'])} REST API</h1><p>{escape(spec['info'].get('description', ''))}</p>",
        "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a> · <a href=/>web page</a></p>",
    ]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            parts.append(f"<div class=op id={escape(op['operationId'])}><h3><span class='m {method}'>{method.upper()}</span>"
                         f"<code>{escape(path)}</code></h3><p>{escape(op.get('summary', ''))}</p>")
            if op.get("description"):
                parts.append(f"<p>{escape(op['description'])}</p>")
            if op.get("parameters"):
                rows = "".join(f"<tr><td><code>{escape(p['name'])}</code></td><td>{p['in']}</td>"
                               f"<td><code>{escape(json.dumps(p['schema']))}</code></td></tr>" for p in op["parameters"])
                parts.append(f"<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>{rows}</table>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append(f"<p>Body (JSON):</p><pre>{_schema_text(body)}</pre>")
            status, answer = next((code, r) for code, r in op["responses"].items() if code.startswith("2"))
            ok = answer["content"]["application/json"]["schema"]
            parts.append(f"<p>Answer ({status}): <a href='#{escape(ok.get('$ref', '').rsplit('/', 1)[-1])}'>"
                         f"{escape(ok.get('$ref', '').rsplit('/', 1)[-1])}</a>; errors: "
                         "<a href='#Error'>Error</a></p></div>")
    parts.append(extra_html)
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3><pre>{_schema_text(schema)}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


OIP_HTML = """<h2>Open Inference Protocol (KServe v2)</h2>
<p>Forwarded to the inference service's <code>inference.GRPCInferenceService</code>; errors are
<code>{"error": "..."}</code>; inputs and outputs may use the binary-data extension (tritonclient's default).</p>
<table><tr><th>method</th><th>path</th></tr>
<tr><td>GET</td><td><code>/v2/health/live</code>, <code>/v2/health/ready</code> (open)</td></tr>
<tr><td>GET</td><td><code>/v2</code></td></tr>
<tr><td>GET</td><td><code>/v2/models/{name}[/versions/{version}]</code>, <code>.../ready</code></td></tr>
<tr><td>POST</td><td><code>/v2/models/{name}[/versions/{version}]/infer</code></td></tr>
<tr><td>POST</td><td><code>/v2/repository/index</code>, <code>/v2/repository/models/{name}/load|unload</code> (admin)</td></tr>
</table>"""
