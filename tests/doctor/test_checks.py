"""Each go-live mistake, made one at a time, fails exactly its own check; with none made,
every check passes. Daraja is the standalone simulator over HTTP throughout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pesaswitch.config import PLACEHOLDER_SECRET_KEY, Settings
from pesaswitch.doctor.report import Report, Status
from pesaswitch.doctor.runner import CHECK_NAMES, run_doctor
from pesaswitch.kit.clock import travel, utcnow
from tests.doctor.conftest import CONSUMER_SECRET, PASSKEY
from tests.support.processes import free_port

MakeSettings = Callable[..., Settings]


def failing(report: Report) -> set[str]:
    return report.names_with(Status.FAIL)


def summary_of(report: Report, name: str) -> str:
    return next(r.summary for r in report.results if r.name == name)


async def test_all_green(doctor_settings: MakeSettings) -> None:
    report = await run_doctor(doctor_settings())
    assert report.ok, report.render_text()
    assert [r.name for r in report.results] == list(CHECK_NAMES)
    # Only the probe stays out unless asked for (tests/doctor/test_probe.py asks).
    assert report.names_with(Status.PASS) == set(CHECK_NAMES) - {"callback_probe"}
    assert report.status_of("callback_probe") is Status.SKIP
    assert "1 live, 0 sandbox" in summary_of(report, "webhook_endpoints")


async def _only_failure(settings: Settings, name: str) -> Report:
    report = await run_doctor(settings)
    assert failing(report) == {name}, report.render_text()
    assert not report.ok
    return report


async def test_bad_consumer_secret(doctor_settings: MakeSettings) -> None:
    report = await _only_failure(
        doctor_settings(daraja_consumer_secret=CONSUMER_SECRET + "x"), "daraja_token"
    )
    assert "400.008.01" in summary_of(report, "daraja_token")
    assert report.status_of("stk_password") is Status.SKIP
    # The refusal still carried a Date header, so the clock was compared anyway.
    assert report.status_of("clock") is Status.PASS


async def test_daraja_unreachable(doctor_settings: MakeSettings) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    report = await _only_failure(doctor_settings(daraja_base_url=closed), "daraja_token")
    assert "no answer from" in summary_of(report, "daraja_token")
    assert report.status_of("stk_password") is Status.SKIP
    assert report.status_of("clock") is Status.SKIP


async def test_bad_passkey(doctor_settings: MakeSettings) -> None:
    wrong = PASSKEY[::-1]
    report = await _only_failure(doctor_settings(daraja_passkey=wrong), "stk_password")
    assert "Wrong credentials" in summary_of(report, "stk_password")


def _ec_certificate(path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not Daraja")])
    now = utcnow()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _rsa_certificate(path: Path, *, valid_for: timedelta) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "an old Daraja certificate")])
    now = utcnow()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - timedelta(days=400)).not_valid_after(now + valid_for)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path.write_bytes(cert.public_bytes(serialization.Encoding.DER))  # DER, as .cer often is


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("garbage", "not an X.509 certificate"),
        ("missing", "cannot read"),
        ("ec_key", "no RSA key"),
    ],
)
async def test_bad_certificate(
    doctor_settings: MakeSettings, tmp_path: Path, kind: str, expected: str
) -> None:
    path = tmp_path / "daraja.cer"
    if kind == "garbage":
        path.write_bytes(b"this is the portal's HTML page, saved by mistake")
    elif kind == "ec_key":
        _ec_certificate(path)
    report = await _only_failure(doctor_settings(daraja_certificate_path=str(path)), "certificate")
    assert expected in summary_of(report, "certificate")


@pytest.mark.parametrize(
    ("valid_for", "expected"),
    [(timedelta(days=10), "within 30 days"), (-timedelta(days=1), "expired on")],
)
async def test_certificate_dates_warn(
    doctor_settings: MakeSettings, tmp_path: Path, valid_for: timedelta, expected: str
) -> None:
    # Its key still encrypts, and Daraja decrypts whatever the dates say: a warning.
    path = tmp_path / "daraja.cer"
    _rsa_certificate(path, valid_for=valid_for)
    report = await run_doctor(doctor_settings(daraja_certificate_path=str(path)))
    assert report.ok, report.render_text()
    assert report.status_of("certificate") is Status.WARN
    result = next(r for r in report.results if r.name == "certificate")
    assert expected in result.details[0]


async def test_public_url_with_words_daraja_advises_against_warns(
    doctor_settings: MakeSettings,
) -> None:
    report = await run_doctor(doctor_settings(public_url="https://196.201.214.200/mpesa"))
    assert report.ok, report.render_text()
    assert report.status_of("public_url") is Status.WARN


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("http://196.201.214.200", "is http"),
        ("https://10.20.30.40", "private, loopback"),
        ("https://localhost", "private, loopback"),
        ("https://169.254.169.254/callbacks", "private, loopback"),
        ("", "PESASWITCH_PUBLIC_URL is not set"),
    ],
)
async def test_bad_public_url(
    doctor_settings: MakeSettings, public_url: str, expected: str
) -> None:
    report = await _only_failure(doctor_settings(public_url=public_url), "public_url")
    assert expected in summary_of(report, "public_url")


async def test_placeholder_secret_key(doctor_settings: MakeSettings) -> None:
    # Settings refuse the placeholder outside simulator mode (test_cli shows that line);
    # here it got past them, as it does in simulator mode, and the doctor still says no.
    settings = doctor_settings().model_copy(update={"secret_key": PLACEHOLDER_SECRET_KEY})
    report = await _only_failure(settings, "secret_key")
    assert "placeholder" in summary_of(report, "secret_key")


@pytest.mark.parametrize(
    ("secret_key", "expected"),
    [
        ("passwordpassword-for-the-gateway-1", "contains 'password'"),
        ("Zq3vT8pW1xR6yL0n", "16 characters"),
        ("ab" * 24, "predictable"),
        ("k" * 40, "predictable"),
    ],
)
async def test_weak_secret_key(
    doctor_settings: MakeSettings, secret_key: str, expected: str
) -> None:
    report = await _only_failure(doctor_settings(secret_key=secret_key), "secret_key")
    summary = summary_of(report, "secret_key")
    assert expected in summary
    assert secret_key not in report.render_json()


@pytest.mark.parametrize("minutes", [10, -10, 5.5])
async def test_clock_skew_fails(doctor_settings: MakeSettings, minutes: float) -> None:
    with travel(timedelta(minutes=minutes)):
        report = await _only_failure(doctor_settings(), "clock")
    direction = "ahead of" if minutes > 0 else "behind"
    assert direction in summary_of(report, "clock")


async def test_small_clock_skew_warns(doctor_settings: MakeSettings) -> None:
    with travel(timedelta(minutes=2)):
        report = await run_doctor(doctor_settings())
    assert report.ok
    assert report.status_of("clock") is Status.WARN


async def test_simulator_mode_warns_and_runs_against_the_embedded_simulator(
    doctor_settings: MakeSettings,
) -> None:
    settings = doctor_settings(
        daraja_mode="simulator", daraja_base_url="", daraja_certificate_path=""
    )
    report = await run_doctor(settings)
    assert report.ok, report.render_text()
    assert report.status_of("daraja_mode") is Status.WARN
    assert report.status_of("stk_password") is Status.PASS  # the simulator checks it too
    assert report.status_of("clock") is Status.SKIP  # no Date header through ASGI
    assert "embedded simulator's certificate" in summary_of(report, "certificate")


async def test_standalone_simulator_gives_its_certificate(
    doctor_settings: MakeSettings,
) -> None:
    report = await run_doctor(doctor_settings(daraja_mode="simulator", daraja_certificate_path=""))
    assert report.ok, report.render_text()
    assert report.status_of("certificate") is Status.PASS
    assert "the simulator's certificate" in summary_of(report, "certificate")
    assert report.status_of("clock") is Status.PASS  # uvicorn's Date header


async def test_production_mode_warns_about_sandbox_leftovers(
    doctor_settings: MakeSettings, request: pytest.FixtureRequest
) -> None:
    # Production settings still naming the sandbox initiator (and, on SQLite, SQLite).
    report = await run_doctor(doctor_settings(daraja_mode="production"))
    assert report.ok, report.render_text()
    assert "real money" in summary_of(report, "daraja_mode")
    assert report.status_of("certificate") is Status.WARN
    on_sqlite = request.config.getoption("--db") == "sqlite"
    assert report.status_of("database") is (Status.WARN if on_sqlite else Status.PASS)
    without = await run_doctor(
        doctor_settings(daraja_mode="production", daraja_initiator_name="DukaApiUser")
    )
    assert without.status_of("certificate") is Status.PASS
