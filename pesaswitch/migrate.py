"""Run Alembic migrations programmatically (the scripts ship inside the package)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from alembic import command
from alembic.config import Config

from pesaswitch.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), revision)
    if path is not None:
        use_wal(path)


def use_wal(path: Path) -> None:
    """Leaves the SQLite file in WAL mode, which the file itself records.

    Every connection asks for WAL when it opens (db.py), and on a file already in WAL
    that is a read, which waits out a busy lock. Switching a file from the rollback
    journal to WAL takes an exclusive lock that SQLite does not wait for: the first
    connections of a fresh database (an API process, its worker) each try the switch,
    and one that meets another's shared lock fails at once with "database is locked".
    Migrations run before any of them, alone, so the switch is made here.
    """
    with closing(sqlite3.connect(path, timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def make_revision(settings: Settings, message: str) -> None:
    command.revision(alembic_config(settings.database_url), message=message, autogenerate=True)
