"""From a fresh checkout: `make run` serves, prints a curl command, and that curl pays."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.processes import Process, free_port


def test_make_run_prints_a_working_curl(repo_root: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        # make run's own defaults, on a fresh database and a free port.
        "PESASWITCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
        "PESASWITCH_PORT": str(port),
        "PESASWITCH_SIMULATOR_DELAY": "0.5",
    }
    env.pop("PESASWITCH_SECRET_KEY", None)
    server = Process(["make", "-s", "-C", str(repo_root), "run"], env, tmp_path / "run.log")
    try:
        server.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        printed = server.output()
        match = re.search(r"(curl -s .*?)\n\n", printed, re.S)
        assert match, printed
        curl = match.group(1)
        assert f"http://127.0.0.1:{port}/v1/payments" in curl
        result = subprocess.run(
            ["bash", "-c", curl], capture_output=True, text=True, check=True, env=os.environ
        )
        payment = httpx.Response(200, content=result.stdout).json()
        assert payment["status"] == "pending", result.stdout
        key = re.search(r"secret key:\s+(\S+)", printed)
        assert key
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            current = httpx.get(
                f"http://127.0.0.1:{port}/v1/payments/{payment['id']}",
                headers={"Authorization": f"Bearer {key.group(1)}"},
            ).json()
            if current["status"] != "pending":
                break
            time.sleep(0.2)
        assert current["status"] == "completed"
        assert current["phone"] == "254708374149"
        assert re.fullmatch(r"[A-Z0-9]{10}", current["mpesa_receipt"])
        # The printed dashboard user signs in and sees that payment.
        email = re.search(r"email:\s+(\S+)", printed)
        password = re.search(r"password:\s+(\S+)", printed)
        assert email
        assert password
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            form = browser.get("/dashboard/login").text
            token = re.search(r'name="csrf_token" value="(\w+)"', form)
            assert token
            signed_in = browser.post(
                "/dashboard/login",
                data={"email": email.group(1), "password": password.group(1),
                      "csrf_token": token.group(1)},
            )  # fmt: skip
            assert signed_in.status_code == 303
            assert f'data-payment-id="{payment["id"]}"' in browser.get("/dashboard/payments").text
    finally:
        server.stop()
