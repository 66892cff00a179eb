"""`serve --bootstrap` (what `make run` does): on an empty database, a sandbox account.

It prints the account's keys once, with a ready curl command, the PayHero-style
``Authorization: Basic …`` header and a dashboard user, and writes the same values as
shell ``export`` lines to ``sandbox.env`` (mode 0600) beside the SQLite database
(``var/sandbox.env`` with the defaults; ``./var/sandbox.env`` on PostgreSQL), so the
README's walkthrough can ``source`` them instead of asking the reader to paste keys.
Only sandbox accounts are ever created here; with the simulator, the account holds the
(simulated) gateway paybill's C2B settings, as the operator would give them (docs/c2b.md).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from pesaswitch.accounts import service as accounts
from pesaswitch.accounts.models import Account, Environment
from pesaswitch.c2b import service as c2b_service
from pesaswitch.c2b.schemas import C2BSettingsIn
from pesaswitch.compat.common import basic_credentials
from pesaswitch.config import DarajaMode, Settings
from pesaswitch.dashboard import users
from pesaswitch.kit.commands import in_transaction
from pesaswitch.kit.ids import new_token

# The first user of a fresh sandbox; its password is random and printed once.
BOOTSTRAP_EMAIL = "owner@sandbox.local"
ENV_FILE_NAME = "sandbox.env"


def new_account_json(new: accounts.NewAccount) -> dict[str, Any]:
    """What `accounts create --json` prints, and what the bootstrap shows."""
    return {
        "account_id": new.account.id,
        "name": new.account.name,
        "environment": new.account.environment,
        "secret_key": new.secret_key.key,
        "public_key": new.public_key.key,
        "default_channel_id": new.default_channel.id,
        # For PayHero/UpesiPay clients: Basic base64(api_username:api_password).
        **basic_credentials(new.secret_key.id, new.secret_key.key),
    }


def env_file_path(settings: Settings) -> Path:
    """Beside the SQLite database file, else ``./var/``."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / ENV_FILE_NAME
    return Path("var") / ENV_FILE_NAME


def env_lines(created: dict[str, Any], base_url: str) -> list[str]:
    values = {
        "PESASWITCH_URL": base_url,
        "PESASWITCH_ACCOUNT": created["account_id"],
        "PESASWITCH_KEY": created["secret_key"],
        "PESASWITCH_PUBLIC_KEY": created["public_key"],
        "PESASWITCH_CHANNEL": str(created["default_channel_id"]),
        "PAYHERO_AUTH": created["basic_auth_header"],
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def write_env_file(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 before anything is written: it holds a secret key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# The sandbox account `make run` created. Sandbox only: never a live key.\n")
        out.write("\n".join(lines) + "\n")


def bootstrap_sandbox(settings: Settings) -> None:
    """On a fresh database, create a sandbox account and print how to use it."""

    async def work(session: AsyncSession) -> dict[str, Any] | None:
        if await session.scalar(select(func.count()).select_from(Account)):
            return None
        new = await accounts.create_account(
            session, secret_key=settings.secret_key, name="Sandbox merchant",
            environment=Environment.SANDBOX,
        )  # fmt: skip
        if settings.daraja_mode is DarajaMode.SIMULATOR:
            # On a gateway of its own with the simulator, the sandbox account is the
            # operator's: it holds the (simulated) paybill's C2B, as docs/c2b.md shows.
            await c2b_service.configure(
                session, channel=new.default_channel, data=C2BSettingsIn(),
                gateway_shortcode=settings.daraja_shortcode,
                reserved=(settings.daraja_b2c_shortcode,), operator=True,
            )  # fmt: skip
        password = new_token(12)
        await users.create_user(
            session, email=BOOTSTRAP_EMAIL, password=password, account_id=new.account.id
        )
        return {**new_account_json(new), "dashboard_password": password}

    created = in_transaction(settings, work)
    if created is None:
        return
    base = settings.effective_public_url
    env_file = env_file_path(settings)
    lines = env_lines(created, base)
    write_env_file(env_file, lines)
    typer.echo(
        "\nCreated a sandbox account (keys are shown only once):\n"
        f"  account id:      {created['account_id']}\n"
        f"  secret key:      {created['secret_key']}\n"
        f"  public key:      {created['public_key']}\n"
        f"  channel id:      {created['default_channel_id']}\n"
        f"  PayHero header:  Authorization: {created['basic_auth_header']}\n\n"
        "Collect KES 5 from the simulator's test number:\n\n"
        f"  curl -s {base}/v1/payments \\\n"
        f"    -H 'Authorization: Bearer {created['secret_key']}' \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        f'    -d \'{{"amount": 5, "phone": "0708374149", '
        f'"channel_id": {created["default_channel_id"]}, "reference": "INV-001"}}\'\n\n'
        f"The same values as shell variables, for the README's commands: source {env_file}\n"
        + "".join(f"  {line}\n" for line in lines)
        + f"\nDashboard: {base}/dashboard\n"
        f"  email:           {BOOTSTRAP_EMAIL}\n"
        f"  password:        {created['dashboard_password']}\n"
    )
