"""The checks that need no network: the database's migration state and the secret key."""

from __future__ import annotations

import math
from collections import Counter

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from pesaswitch.config import PLACEHOLDER_SECRET_KEY, DarajaMode
from pesaswitch.doctor.context import DoctorContext
from pesaswitch.doctor.report import CheckResult, failed, mask_url_password, passed, warned
from pesaswitch.kit.crypto import secrets_equal
from pesaswitch.migrate import alembic_config

# 32 random characters from any usual alphabet carry well over 128 bits.
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128
# Words that mark a value someone meant to replace.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "placeholder", "example", "password")
MIGRATE_HINT = "run `pesaswitch migrate` (serve also migrates when it starts)"


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def check_database(ctx: DoctorContext) -> CheckResult:
    settings = ctx.settings
    shown = mask_url_password(settings.database_url)
    sqlite_path = settings.sqlite_path()
    # Connecting would create an empty SQLite file; the doctor changes nothing.
    if sqlite_path is not None and not sqlite_path.exists():
        return failed("database", f"{sqlite_path} does not exist: {MIGRATE_HINT}")
    script = ScriptDirectory.from_config(alembic_config(settings.database_url))
    heads = tuple(script.get_heads())
    try:
        async with ctx.engine.connect() as connection:
            current = await connection.run_sync(_current_heads)
    except (OSError, SQLAlchemyError) as exc:
        return failed("database", f"cannot connect to {shown}: {type(exc).__name__}: {exc}")
    if not current:
        return failed("database", f"{shown} is not migrated (no revision): {MIGRATE_HINT}")
    unknown = [rev for rev in current if script.get_revision(rev) is None]
    if unknown:
        return failed(
            "database",
            f"{shown} is at revision {', '.join(unknown)}, which this version of pesaswitch "
            "does not know: was it migrated by a newer one?",
        )
    if set(current) != set(heads):
        return failed(
            "database",
            f"{shown} is at {', '.join(current)}, the code's head is {', '.join(heads)}: "
            f"{MIGRATE_HINT}",
        )
    ctx.database_at_head = True
    summary = f"{shown} is migrated to head ({', '.join(heads)})"
    if sqlite_path is not None and settings.daraja_mode is DarajaMode.PRODUCTION:
        return warned(
            "database", summary, "SQLite has one writer on one machine: production wants "
            "PostgreSQL (PESASWITCH_DATABASE_URL=postgresql+asyncpg://…)",
        )  # fmt: skip
    return passed("database", summary)


def estimated_bits(value: str) -> float:
    """Length times the Shannon entropy of the value's own character frequencies.

    A heuristic: it catches repetition and tiny alphabets, but cannot tell a random
    string from a long memorable phrase; only generating the key makes it random.
    """
    if not value:
        return 0.0
    counts = Counter(value)
    per_char = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return per_char * len(value)


def check_secret_key(ctx: DoctorContext) -> CheckResult:
    key = ctx.settings.secret_key
    generate = "generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    if secrets_equal(key, PLACEHOLDER_SECRET_KEY):
        return failed("secret_key", "PESASWITCH_SECRET_KEY is the sandbox placeholder", generate)
    lowered = key.lower()
    marker = next((m for m in PLACEHOLDER_MARKERS if m in lowered), None)
    if marker is not None:
        return failed(
            "secret_key", f"PESASWITCH_SECRET_KEY contains {marker!r}: a placeholder?", generate
        )
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return failed(
            "secret_key",
            f"PESASWITCH_SECRET_KEY has {len(key)} characters; use at least "
            f"{MIN_SECRET_KEY_LENGTH} random ones",
            generate,
        )
    bits = estimated_bits(key)
    if bits < MIN_SECRET_KEY_BITS:
        return failed(
            "secret_key",
            f"PESASWITCH_SECRET_KEY is predictable: about {bits:.0f} bits by its character "
            f"frequencies, under {MIN_SECRET_KEY_BITS}",
            generate,
        )
    return passed(
        "secret_key",
        f"{len(key)} characters, about {bits:.0f} bits by character frequency; keep it: "
        "it verifies every API key and decrypts stored secrets",
    )
