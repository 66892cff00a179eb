"""The Python blocks of a Markdown file, ready to run against the test gateway."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
SDK_README = REPO_ROOT / "sdk" / "python" / "README.md"
SDK_DOCS = REPO_ROOT / "docs" / "sdk.md"

# What the examples show a reader, and what the tests put in its place.
PLACEHOLDER_KEY = "sk_test_…"
PLACEHOLDER_BASE_URL = "http://127.0.0.1:8000"

_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    blocks = _BLOCK.findall(path.read_text())
    assert blocks, f"no ```python blocks in {path}"
    return blocks


def pointed_at(code: str, *, api_key: str, base_url: str) -> str:
    assert PLACEHOLDER_KEY in code or "Pesaswitch" not in code, code
    return code.replace(PLACEHOLDER_KEY, api_key).replace(PLACEHOLDER_BASE_URL, base_url)
