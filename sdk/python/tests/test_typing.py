"""A user's code that uses the SDK passes ``mypy --strict``: the README's first payment, the
guide (its blocks as one module, as they run), and examples/. mypy runs outside the
repository, with no configuration of ours, on the installed package, as in a user's
project; that also checks that the package ships ``py.typed``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway import SDK_ROOT
from snippets import SDK_DOCS, SDK_README, python_blocks

# Warm between runs (it is in .gitignore's .mypy_cache pattern); cold, mypy reads all of
# pydantic and httpx first.
CACHE_DIR = SDK_ROOT / ".mypy_cache" / "user-code"


def test_user_code_type_checks_strictly(tmp_path: Path) -> None:
    project = tmp_path / "user_project"
    project.mkdir()
    (project / "readme_first_payment.py").write_text(python_blocks(SDK_README)[0])
    (project / "sdk_guide.py").write_text("\n\n".join(python_blocks(SDK_DOCS)))
    for example in (SDK_ROOT / "examples").glob("*.py"):
        (project / example.name).write_text(example.read_text())
    checked = sorted(p.name for p in project.glob("*.py"))
    assert "first_payment.py" in checked

    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file=", "--no-error-summary",
         "--cache-dir", str(CACHE_DIR), *checked],
        cwd=project, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_a_type_error_in_user_code_is_caught(tmp_path: Path) -> None:
    # The check above could pass by not seeing the SDK's types at all (an untyped import
    # is Any); a wrong attribute and a wrong argument type must fail.
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from pesaswitch_sdk import Pesaswitch\n"
        "client = Pesaswitch(api_key='sk_test_x', base_url='http://127.0.0.1:1')\n"
        "payment = client.payments.get('pay_1')\n"
        "receipt: int = payment.mpesa_receipt\n"
        "client.payments.create(amount='10', phone='254708374149')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file=", "--cache-dir",
         str(CACHE_DIR), wrong.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert 'expression has type "str | None", variable has type "int"' in result.stdout
    assert 'Argument "amount"' in result.stdout
