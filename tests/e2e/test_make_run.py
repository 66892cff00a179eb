"""From a fresh checkout: `make run` serves, prints a curl command, and that curl pays."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.processes import PESASWITCH, Process, free_port


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
        server.wait_http(f"http://127.0.0.1:{port}/healthz")
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
        # The PayHero header, ready to paste, and the same values for `source`.
        header = re.search(r"PayHero header:\s+Authorization: (Basic \S+)", printed)
        assert header
        env_file = tmp_path / "sandbox.env"  # beside the SQLite database
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert f"export PESASWITCH_KEY={key.group(1)}\n" in env_file.read_text()
        assert f"export PAYHERO_AUTH='{header.group(1)}'\n" in env_file.read_text()
        assert f"source {env_file}" in printed
        sourced = subprocess.run(
            ["bash", "-c", f"source {env_file} && echo $PESASWITCH_CHANNEL $PESASWITCH_URL"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert sourced.stdout.split() == ["1", f"http://127.0.0.1:{port}"]
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


def test_accounts_create_needs_no_name(tmp_path: Path) -> None:
    env = {**os.environ, "PESASWITCH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"}
    env.pop("PESASWITCH_SECRET_KEY", None)
    subprocess.run([PESASWITCH, "migrate"], env=env, check=True, capture_output=True)
    made = [
        json.loads(
            subprocess.run(
                [PESASWITCH, "accounts", "create", "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for _ in range(2)
    ]
    assert [m["name"] for m in made] == ["New merchant", "New merchant"]
    # Each account has its own wallet channel: the second one's is not channel 1.
    assert [m["default_channel_id"] for m in made] == [1, 2]
    assert made[1]["basic_auth_header"].startswith("Basic ")
