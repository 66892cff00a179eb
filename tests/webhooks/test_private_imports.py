"""A domain package uses another's public names only: a private one (``_send``) may
change under it without notice. C2B validation once borrowed the webhook dispatcher's
``_send``; it now calls ``webhooks.sending.post_pinned``, the interface both share."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pesaswitch"


def _domain(module: str) -> str:
    """``pesaswitch.webhooks.dispatcher`` → ``webhooks``; a top-level module is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _private_imports_across_domains() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        importer = ".".join(relative.parts)
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if not node.module.startswith("pesaswitch.") or node.level:
                continue
            if _domain(node.module) == _domain(importer):
                continue
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{importer}: from {node.module} import {alias.name}")
    return found


def test_no_domain_imports_another_domains_private_names() -> None:
    assert _private_imports_across_domains() == []
