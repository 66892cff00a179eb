"""``pesaswitch doctor`` as an operator runs it: a process, settings from the environment,
the exit code and the printed lines (text and ``--json``), with no secret in either."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from pesaswitch.config import PLACEHOLDER_SECRET_KEY, Settings
from pesaswitch.doctor.runner import CHECK_NAMES, secret_values
from tests.support.processes import PESASWITCH

MakeSettings = Callable[..., Settings]


def environment(settings: Settings) -> dict[str, str]:
    names = (
        "database_url", "secret_key", "daraja_mode", "daraja_base_url", "daraja_consumer_key",
        "daraja_consumer_secret", "daraja_shortcode", "daraja_passkey",
        "daraja_certificate_path", "daraja_initiator_password", "daraja_timeout", "public_url",
        "log_level",
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PESASWITCH_")}
    for name in names:
        value = getattr(settings, name)
        env[f"PESASWITCH_{name.upper()}"] = str(getattr(value, "value", value))
    return env


def doctor(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PESASWITCH, "doctor", *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def assert_no_secrets(settings: Settings, output: str) -> None:
    for value in secret_values(settings):
        assert value not in output


async def test_green_json_exits_zero(doctor_settings: MakeSettings, tmp_path: Path) -> None:
    settings = doctor_settings()
    run = doctor(environment(settings), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    body = json.loads(run.stdout)
    assert body["ok"] is True
    assert [c["name"] for c in body["checks"]] == list(CHECK_NAMES)
    assert body["counts"] == {"pass": 10, "warn": 0, "fail": 0, "skip": 1}
    assert_no_secrets(settings, run.stdout + run.stderr)


async def test_one_failure_exits_one(doctor_settings: MakeSettings, tmp_path: Path) -> None:
    settings = doctor_settings(daraja_passkey="0" * 64)
    run = doctor(environment(settings), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    failures = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 1, run.stdout
    assert failures[0].startswith("FAIL  stk_password")
    assert run.stdout.rstrip().endswith("not ready")
    assert_no_secrets(settings, run.stdout + run.stderr)


async def test_refused_settings_are_one_failed_line(
    doctor_settings: MakeSettings, tmp_path: Path
) -> None:
    env = environment(doctor_settings())
    env["PESASWITCH_SECRET_KEY"] = PLACEHOLDER_SECRET_KEY
    run = doctor(env, cwd=tmp_path)
    assert run.returncode == 1
    assert "FAIL  settings" in run.stdout
    assert "sandbox placeholder" in run.stdout

    env["PESASWITCH_SECRET_KEY"] = "short-key-42"  # under the 16 characters Settings need
    run = doctor(env, "--json", cwd=tmp_path)
    assert run.returncode == 1
    body = json.loads(run.stdout)
    assert body["checks"][0]["name"] == "settings"
    assert "at least 16 characters" in body["checks"][0]["details"][0]
    assert "short-key-42" not in run.stdout + run.stderr
