"""MkDocs hook: the API reference, rendered from the gateway's own OpenAPI schema.

At build time it builds the app with ``create_app`` (no server, no network: a throwaway
SQLite path and the embedded simulator, nothing started), takes ``app.openapi()``, adds it
to the site as ``openapi.json`` and replaces ``<!-- openapi-reference -->`` in a page with
Markdown: one section per tag, one per operation (parameters, request body, responses),
then every schema with its fields. Plain Markdown, so it works offline and under
``mkdocs build --strict``, with no renderer to download.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

MARKER = "<!-- openapi-reference -->"
METHODS = ("get", "post", "put", "patch", "delete")
_schema: dict[str, Any] | None = None


def openapi() -> dict[str, Any]:
    global _schema
    if _schema is None:
        from pesaswitch.app import create_app
        from pesaswitch.config import Settings

        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'docs.db'}", log_level="warning"
            )
            _schema = create_app(settings).openapi()
    return _schema


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, "openapi.json", content=json.dumps(openapi(), indent=2)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render(openapi()))


def _anchor(name: str) -> str:
    return "schema-" + "".join(c if c.isalnum() else "-" for c in name.lower())


def type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{_anchor(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(type_of(s) for s in schema.get("anyOf", schema.get("oneOf", [])))
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"object of {type_of(extra)}" if isinstance(extra, dict) else "object"
    return f"`{kind}`"


def _cell(text: str | None) -> str:
    return (text or "").replace("\n", " ").replace("|", "\\|")


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        out += [f"**{op['summary']}**", ""]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            out.append(
                f"| `{p['name']}` | {p['in']} | {type_of(p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            )
        out.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out += [f"Request body (`{media}`): {type_of(content.get('schema', {}))}", ""]
    out += ["| status | description | body |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        schemas = [type_of(c.get("schema", {})) for c in response.get("content", {}).values()]
        shown = ", ".join(s for s in schemas if s != "`any`")
        out.append(f"| {status} | {_cell(response.get('description'))} | {shown} |")
    return [*out, ""]


def _schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f'<a id="{_anchor(name)}"></a>', "", f"### `{name}`", ""]
    if schema.get("description"):
        out += [_cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*out, f"Type: {type_of(schema)}", ""]
    required = set(schema.get("required", []))
    out += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        out.append(
            f"| `{field}` | {type_of(spec)} | {'yes' if field in required else 'no'} | "
            f"{_cell(spec.get('description'))} |"
        )
    return [*out, ""]


def render(spec: dict[str, Any]) -> str:
    by_tag: dict[str, list[str]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).extend(_operation(path, method, item[method]))
    lines: list[str] = []
    for tag in sorted(by_tag):
        lines += [f"## {tag.capitalize()}", "", *by_tag[tag]]
    lines += ["## Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema_section(name, schema)
    return "\n".join(lines)
