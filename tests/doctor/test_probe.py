"""``--probe`` over a real socket: the gateway served by uvicorn on 127.0.0.1, reached
through PESASWITCH_PUBLIC_URL. (Loopback is not public, so public_url fails in these
runs by design; the probe is judged on its own line.)"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
import uvicorn

from pesaswitch.app import create_app
from pesaswitch.config import Settings
from pesaswitch.doctor.report import Report, Status
from pesaswitch.doctor.runner import run_doctor
from tests.support.processes import free_port

MakeSettings = Callable[..., Settings]


@pytest.fixture
async def gateway_url(doctor_settings: MakeSettings) -> AsyncIterator[str]:
    port = free_port()
    app = create_app(doctor_settings())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    serving = asyncio.create_task(server.serve())
    async with asyncio.timeout(15):
        while not server.started:
            if serving.done():
                serving.result()  # raises what stopped it
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


def probe_line(report: Report) -> tuple[Status, str]:
    result = next(r for r in report.results if r.name == "callback_probe")
    return result.status, result.summary


async def test_probe_reaches_this_gateway(doctor_settings: MakeSettings, gateway_url: str) -> None:
    report = await run_doctor(doctor_settings(public_url=gateway_url), probe=True)
    status, summary = probe_line(report)
    assert status is Status.PASS, report.render_text()
    assert "reached this gateway" in summary
    assert report.status_of("public_url") is Status.FAIL  # http on loopback


async def test_probe_finds_a_gateway_with_another_secret_key(
    doctor_settings: MakeSettings, gateway_url: str
) -> None:
    settings = doctor_settings(public_url=gateway_url, secret_key=secrets.token_urlsafe(48))
    status, summary = probe_line(await run_doctor(settings, probe=True))
    assert status is Status.FAIL
    assert "another PESASWITCH_SECRET_KEY" in summary


async def test_probe_finds_something_else(
    doctor_settings: MakeSettings, simulator_url: str
) -> None:
    # The simulator answers HTTP on that address, but it is not a gateway.
    status, summary = probe_line(
        await run_doctor(doctor_settings(public_url=simulator_url), probe=True)
    )
    assert status is Status.FAIL
    assert "HTTP 404" in summary


async def test_probe_finds_nothing(doctor_settings: MakeSettings) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    status, summary = probe_line(await run_doctor(doctor_settings(public_url=closed), probe=True))
    assert status is Status.FAIL
    assert "no answer" in summary
