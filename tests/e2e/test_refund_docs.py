"""docs/refunds.md and docs/bank-paybills.md: their shell blocks run as printed (only the
port and the key differ) against a server started the way ``make run`` starts it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Process, free_port

BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def _script(doc: Path, port: int, key: str) -> str:
    text = "\n".join(BLOCK.findall(doc.read_text()))
    text = re.sub(r"export PESASWITCH_KEY=sk_test_\.\.\..*", f"export PESASWITCH_KEY={key}", text)
    return text.replace("127.0.0.1:8000", f"127.0.0.1:{port}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    tmp = tmp_path_factory.mktemp("docs")
    port = free_port()
    env = {
        "PESASWITCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'docs.db'}",
        "PESASWITCH_PORT": str(port),
        "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
        "PESASWITCH_SIMULATOR_DELAY": "1",
    }
    root = Path(__file__).resolve().parents[2]
    server = Process([str(root / ".venv/bin/pesaswitch"), "serve", "--bootstrap"], env,
                     tmp / "serve.log")  # fmt: skip
    try:
        server.wait_http(f"http://127.0.0.1:{port}/healthz")
        key = re.search(r"secret key:\s+(\S+)", server.output())
        assert key, server.output()
        yield port, key.group(1)
    finally:
        server.stop()


def _run(script: str) -> str:
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_refund_docs_run_as_printed(repo_root: Path, served: tuple[int, str]) -> None:
    out = _run(_script(repo_root / "docs/refunds.md", *served))
    assert '"object":"refund"' in out
    assert '"amount":400' in out
    assert '"code":"refund_exceeds_payment"' in out
    assert '"refundable":600' in out
    assert '"amount_refunded":400' in out
    assert '"amount_refundable":600' in out
    assert '"object":"reversal"' in out
    assert '"wallet_amount":492' in out


def test_bank_paybill_docs_run_as_printed(repo_root: Path, served: tuple[int, str]) -> None:
    out = _run(_script(repo_root / "docs/bank-paybills.md", *served))
    assert '"paybill":"247247"' in out
    assert '{"bank_name":"KCB Bank Kenya","short_code":"522522"}' in out
    assert '"channel_type":"bank"' in out
    assert '"account_number":"1280006242"' in out
    assert "content-type: text/javascript" in out.lower()
