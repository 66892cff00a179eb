"""Secrets are compared in constant time, and a comparison never fails on odd input.

The scan reads the package's syntax tree: an ``==``/``!=`` with a secret-looking name
on either side (key, token, signature, MAC, password, passkey, hash, CSRF…) fails the
test unless it is an SQL expression on a model column (an indexed lookup by a keyed hash
or a random token) or listed in ALLOWED with the reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import Gateway, Merchant

PACKAGE = Path(__file__).resolve().parents[2] / "pesaswitch"
SECRET = re.compile(
    r"secret|token|signature|(^|_)mac$|password|passkey|digest|hash|csrf|hmac|api_key|credential",
    re.IGNORECASE,
)
ALLOWED = {
    # A public constant: the check refuses the documented placeholder, it guards no secret.
    "config.py": "self.secret_key == PLACEHOLDER_SECRET_KEY",
}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call | ast.Subscript):
        return _name(node.func if isinstance(node, ast.Call) else node.value)
    return None


def _is_column(node: ast.AST) -> bool:
    root = node
    while isinstance(root, ast.Attribute):
        root = root.value
    return isinstance(node, ast.Attribute) and isinstance(root, ast.Name) and root.id[:1].isupper()


def secret_comparisons() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) for o in operands) or any(map(_is_column, operands)):
                continue
            if any((name := _name(o)) and SECRET.search(name) for o in operands):
                source = ast.unparse(node)
                if ALLOWED.get(path.name) != source:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {source}")
    return found


def test_no_secret_is_compared_with_equals() -> None:
    assert secret_comparisons() == [], "use kit.crypto.secrets_equal (hmac.compare_digest)"


def test_the_scan_finds_what_it_is_for(tmp_path: Path) -> None:
    tree = ast.parse("if presented_token == stored_token: pass\nif mac != expected: pass")
    compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
    assert all(any(SECRET.search(_name(o) or "") for o in [c.left, *c.comparators])
               for c in compares)  # fmt: skip


async def test_non_ascii_signatures_are_refused_not_crashed(
    gateway: Gateway, merchant: Merchant
) -> None:
    """hmac.compare_digest raises TypeError on non-ASCII str: that was a 500."""
    status = await gateway.client.get("/pay/someslug/payments/pay_x/status", params={"t": "é" * 8})
    assert status.status_code == 404, status.text
    page = await gateway.client.get("/pay/someslug/payments/pay_x", params={"t": "ü"})
    assert page.status_code == 404, page.text
    login = await gateway.client.get("/dashboard/login")
    assert login.status_code == 200
    refused = await gateway.client.post(
        "/dashboard/login", data={"email": "a@b.c", "password": "x", "csrf_token": "ñ" * 8}
    )
    assert refused.status_code < 500, refused.text
