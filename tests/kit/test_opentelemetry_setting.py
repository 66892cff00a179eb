"""PESASWITCH_OPENTELEMETRY: FastAPI's native spans reach a configured provider only when
asked for. In a process of its own: OpenTelemetry's global provider can be set once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import asyncio, sys
import httpx
from opentelemetry import trace
from pesaswitch.app import create_app
from pesaswitch.config import Settings

started = []

class RecordingTracer(trace.NoOpTracer):
    def start_span(self, name, *args, **kwargs):
        started.append(name)
        return super().start_span(name, *args, **kwargs)

    def start_as_current_span(self, name, *args, **kwargs):
        started.append(name)
        return super().start_as_current_span(name, *args, **kwargs)

class RecordingProvider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        return RecordingTracer()

trace.set_tracer_provider(RecordingProvider())
app = create_app(Settings(database_url=sys.argv[1], opentelemetry=sys.argv[2] == "on"))

async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.get("/healthz")
        assert answer.status_code == 200, answer.text
    print(len(started))

asyncio.run(main())
"""


@pytest.mark.parametrize(("setting", "traced"), [("on", True), ("off", False)])
def test_native_spans_follow_the_setting(tmp_path: Path, setting: str, traced: bool) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'otel.db'}"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, database, setting],
        capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (int(done.stdout.strip().splitlines()[-1]) > 0) is traced
