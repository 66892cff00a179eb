"""The ``pesaswitch`` command: serve, worker, migrate, doctor, accounts, keys, channels,
simulator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess  # nosec B404
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch import migrate as migrations
from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Account, ChannelKind, Environment, KeyKind
from pesaswitch.app import build_runtime, create_served_app, simulator_config
from pesaswitch.bootstrap import bootstrap_sandbox, new_account_json
from pesaswitch.c2b.cli import c2b_app, register_c2b
from pesaswitch.compat.common import basic_credentials
from pesaswitch.config import Settings
from pesaswitch.dashboard.cli import users_app
from pesaswitch.doctor.runner import load_and_run
from pesaswitch.kit.commands import echo_json, in_transaction, load_settings
from pesaswitch.kit.heap import settle_heap
from pesaswitch.kit.logging import configure_logging
from pesaswitch.ledger.cli import ledger_app
from pesaswitch.payouts.cli import fx_app
from pesaswitch.protection.cli import protection_app
from pesaswitch.simulator.app import Simulator
from pesaswitch.webhooks.cli import events_app, webhooks_app
from pesaswitch.worker import run_worker

WORKER_HEALTHCHECK_SECONDS = 15

app = typer.Typer(
    no_args_is_help=True,
    help="pesaswitch: a self-hostable M-Pesa gateway.",
    pretty_exceptions_show_locals=False,
)
accounts_app = typer.Typer(no_args_is_help=True, help="Merchant accounts.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys.")
channels_app = typer.Typer(no_args_is_help=True, help="Payment channels.")
credentials_app = typer.Typer(no_args_is_help=True, help="Merchants' own Daraja apps.")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
app.add_typer(channels_app, name="channels")
app.add_typer(credentials_app, name="credentials")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(c2b_app, name="c2b")
channels_app.command("register-c2b")(register_c2b)
app.add_typer(events_app, name="events")
app.add_typer(fx_app, name="fx")
app.add_typer(protection_app, name="protection")
app.add_typer(ledger_app, name="ledger")
app.add_typer(users_app, name="users")


@app.command("migrate")
def migrate_command() -> None:
    """Apply database migrations."""
    migrations.upgrade(load_settings())
    typer.echo("database is up to date")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Defaults to PESASWITCH_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Defaults to PESASWITCH_PORT.")] = None,
    bootstrap: Annotated[
        bool, typer.Option(help="Create a sandbox account on an empty database.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes sharing the port (uvicorn workers).")
    ] = 1,
) -> None:
    """Migrate, then serve the API (with the embedded worker and simulator by default)."""
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)
    configure_logging(settings.log_level, json=settings.log_json)
    migrations.upgrade(settings)
    if bootstrap or settings.bootstrap_sandbox_account:
        bootstrap_sandbox(settings)
    if workers > 1:
        if settings.embedded_simulator:
            # Each process would hold its own simulator, and Daraja's callbacks and
            # queries would reach the wrong one.
            typer.echo(
                "--workers needs Daraja or a standalone simulator: run `pesaswitch simulator` "
                "and set PESASWITCH_DARAJA_BASE_URL to it.",
                err=True,
            )
            raise typer.Exit(code=2)
        # Every process builds its app from the environment, so pass the overrides on.
        os.environ["PESASWITCH_HOST"] = settings.host
        os.environ["PESASWITCH_PORT"] = str(settings.port)
        uvicorn.run(
            "pesaswitch.app:create_served_app",
            factory=True,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            # uvicorn kills a worker that does not answer its ping within this, and a new
            # worker can answer only once its process has started and imported what it
            # runs: with uvicorn's 5 s, a busy machine (8 other processes on 2 cores) had
            # the workers killed and started again, 4 times before any served; with 15 s,
            # none. Not longer: while the supervisor waits on one worker's answer it does
            # not see another die, and a killed API process is to be replaced in seconds.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )
        return
    uvicorn.run(
        create_served_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )


@app.command("worker")
def worker() -> None:
    """Run the background loops (reconciliation) without the API."""
    settings = load_settings()
    if settings.embedded_simulator:
        typer.echo(
            "A standalone worker cannot share an embedded simulator: run "
            "`pesaswitch simulator` and set PESASWITCH_DARAJA_BASE_URL to it.",
            err=True,
        )
        raise typer.Exit(code=2)

    async def main() -> None:
        runtime = build_runtime(settings)
        settle_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_worker(runtime, stop)
        finally:
            await runtime.aclose()

    _run_fast(main())


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (uvicorn[standard] brings it on Linux and macOS):
    the API already runs on it under uvicorn, and the worker's webhook sends and database
    round trips cost less CPU on it than on asyncio's selector loop (bench/issue-11-rounds.md)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


@app.command("simulator")
def simulator(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 9100,
) -> None:
    """Run the Daraja simulator on its own port."""
    settings = load_settings()
    sim = Simulator(simulator_config(settings))
    settle_heap()
    uvicorn.run(sim.app, host=host, port=port, log_level=settings.log_level, access_log=False)


@app.command("doctor")
def doctor(
    probe: Annotated[
        bool, typer.Option("--probe", help="Also fetch PESASWITCH_PUBLIC_URL from here.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the settings, Daraja and the database before going live; exit 1 on a failure."""
    report = load_and_run(probe=probe)
    typer.echo(report.render_json() if as_json else report.render_text())
    raise typer.Exit(code=0 if report.ok else 1)


@app.command(
    "bench",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Benchmark the API as separate processes (bench/run.py; `--help` lists its options)."""
    # The harness lives in bench/ (it reuses tests/support), outside the installed package.
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "run.py").is_file():
        typer.echo("`pesaswitch bench` runs from a source checkout (bench/ is missing)", err=True)
        raise typer.Exit(code=2)
    # ruff S603 / bandit B603 (and B404 on the import, its only use): this interpreter and
    # a fixed module; the arguments are the operator's own command line, as a list.
    argv = [sys.executable, "-m", "bench.run", *ctx.args]
    child = subprocess.Popen(argv, cwd=root)  # noqa: S603  # nosec B603
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # the harness cleans up
    while child.returncode is None:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the harness too
            child.wait()
    raise typer.Exit(code=child.returncode)


@app.command(
    "chaos",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def chaos(ctx: typer.Context) -> None:
    """A seeded chaos run of real processes (chaos/run.py; `--help` lists its options)."""
    # Like bench: the harness lives in chaos/ and reuses bench/ and tests/support.
    root = Path(__file__).resolve().parent.parent
    if not (root / "chaos" / "run.py").is_file():
        typer.echo("`pesaswitch chaos` runs from a source checkout (chaos/ is missing)", err=True)
        raise typer.Exit(code=2)
    argv = [sys.executable, "-m", "chaos.run", *ctx.args]
    child = subprocess.Popen(argv, cwd=root)  # noqa: S603  # nosec B603
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # the harness cleans up
    while child.returncode is None:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the harness too
            child.wait()
    raise typer.Exit(code=child.returncode)


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Option(help="The merchant's name.")] = "New merchant",
    live: Annotated[bool, typer.Option("--live", help="A live account (default sandbox).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an account with a secret key, a public key and a wallet channel."""
    settings = load_settings()
    environment = Environment.LIVE if live else Environment.SANDBOX

    async def work(session: AsyncSession) -> dict[str, Any]:
        new = await accounts.create_account(
            session, secret_key=settings.secret_key, name=name, environment=environment
        )
        return new_account_json(new)

    created = in_transaction(settings, work)
    if as_json:
        echo_json(created)
    else:
        for key, value in created.items():
            typer.echo(f"{key}: {value}")


@accounts_app.command("list")
def accounts_list() -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await session.scalars(select(Account).order_by(Account.created_at))
        return [{"id": a.id, "name": a.name, "environment": a.environment} for a in rows]

    echo_json(in_transaction(settings, work))


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    public: Annotated[bool, typer.Option("--public", help="A read-only pk_ key.")] = False,
) -> None:
    """Create an API key; it is printed once and cannot be shown again."""
    settings = load_settings()
    kind = KeyKind.PUBLIC if public else KeyKind.SECRET

    async def work(session: AsyncSession) -> dict[str, Any]:
        acct = await accounts.get_account(session, account_id=account)
        issued = await accounts.create_api_key(
            session, secret_key=settings.secret_key, account=acct, kind=kind
        )
        shown: dict[str, Any] = {"id": issued.id, "kind": issued.kind.value, "key": issued.key}
        if issued.kind is KeyKind.SECRET:
            shown.update(basic_credentials(issued.id, issued.key))
        return shown

    echo_json(in_transaction(settings, work))


@keys_app.command("add-signing-key")
def keys_add_signing_key(
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    public_key_file: Annotated[Path, typer.Option(help="PEM RSA public key.", exists=True)],
) -> None:
    """Register the public key that verifies the account's signed requests (Pokea Pay)."""
    settings = load_settings()
    pem = public_key_file.read_text()

    async def work(session: AsyncSession) -> dict[str, Any]:
        await accounts.get_account(session, account_id=account)
        row = await accounts.add_signing_key(session, account_id=account, public_key_pem=pem)
        return {"id": row.id, "account_id": row.account_id}

    echo_json(in_transaction(settings, work))


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_…).")]) -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await accounts.revoke_api_key(session, key_id=key_id)
        return {"id": row.id, "revoked_at": str(row.revoked_at)}

    echo_json(in_transaction(settings, work))


@channels_app.command("add")
def channels_add(
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    kind: Annotated[ChannelKind, typer.Option(help="wallet, till, paybill or bank.")],
    shortcode: Annotated[str | None, typer.Option(help="Till, paybill or bank paybill.")] = None,
    account_number: Annotated[str | None, typer.Option(help="Bank account number.")] = None,
    description: Annotated[str, typer.Option()] = "",
    credential: Annotated[int | None, typer.Option(help="Credential id to push with.")] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
) -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, Any]:
        await accounts.get_account(session, account_id=account)
        channel = await accounts.add_channel(
            session, account_id=account, kind=kind, shortcode=shortcode,
            account_number=account_number, description=description,
            credential_id=credential, make_default=default,
        )  # fmt: skip
        return {"id": channel.id, "kind": channel.kind, "is_default": channel.is_default}

    echo_json(in_transaction(settings, work))


@channels_app.command("list")
def channels_list(account: Annotated[str, typer.Option(help="Account id (acct_…).")]) -> None:
    settings = load_settings()

    async def work(session: AsyncSession) -> list[dict[str, Any]]:
        rows = await accounts.list_channels(session, account_id=account)
        return [
            {
                "id": c.id,
                "kind": c.kind,
                "shortcode": c.shortcode,
                "account_number": c.account_number,
                "description": c.description,
                "is_default": c.is_default,
            }
            for c in rows
        ]

    echo_json(in_transaction(settings, work))


@credentials_app.command("add")
def credentials_add(
    account: Annotated[str, typer.Option(help="Account id (acct_…).")],
    shortcode: Annotated[str, typer.Option(help="Business shortcode (paybill or HO number).")],
    consumer_key: Annotated[str, typer.Option(prompt=True)],
    consumer_secret: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    passkey: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    name: Annotated[str, typer.Option()] = "Daraja app",
) -> None:
    """Store a merchant's own Daraja app, encrypted with PESASWITCH_SECRET_KEY."""
    settings = load_settings()

    async def work(session: AsyncSession) -> dict[str, Any]:
        await accounts.get_account(session, account_id=account)
        credential = await accounts.add_credential(
            session, secret_key=settings.secret_key, account_id=account, name=name,
            shortcode=shortcode, consumer_key=consumer_key,
            consumer_secret=consumer_secret, passkey=passkey,
        )  # fmt: skip
        return {"id": credential.id, "shortcode": credential.shortcode}

    echo_json(in_transaction(settings, work))
