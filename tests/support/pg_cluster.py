"""A throwaway PostgreSQL cluster for the suite: initdb, pg_ctl start, and rm -rf after.

Runs the server as the ``postgres`` user when the suite runs as root (initdb refuses
root). Listens on 127.0.0.1 and a private socket directory only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port


def _pg_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries not found; run scripts/ensure-postgres.sh")


@dataclass(frozen=True)
class Cluster:
    url: str
    pg_ctl: list[str]  # pg_ctl (as the postgres user when needed) with the data directory
    options: str
    root: Path

    def restart(self) -> None:
        """Stop at once (as a crash would: ``-m immediate``) and start again, same port."""
        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], check=True,
                       capture_output=True, cwd=self.root)  # fmt: skip
        subprocess.run([*self.pg_ctl, "-o", self.options, "-l", str(self.root / "server.log"),
                        "-w", "start"], check=True, capture_output=True, cwd=self.root)  # fmt: skip


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    with restartable_cluster() as cluster:
        yield cluster.url


@contextmanager
def restartable_cluster() -> Iterator[Cluster]:
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="pesaswitch-pg-"))
    data, log = root / "data", root / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, cwd=root)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync")  # fmt: skip
        # synchronous_commit on, unlike the other throwaway clusters: ``restart`` stops
        # with ``-m immediate``, which discards WAL still in PostgreSQL's buffers, so with
        # it off a commit already answered could vanish (a chaos run saw a committed
        # payment gone after the restart). fsync stays off: the OS keeps what was written.
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=on -c full_page_writes=off -c max_connections=300"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w",
            "start")  # fmt: skip
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "pesaswitch_test")  # fmt: skip
        yield Cluster(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/pesaswitch_test",
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data)], options, root,
        )  # fmt: skip
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            cwd=root,
            check=False,
        )
        # The server's log outlives the cluster when asked for (deadlock reports name
        # both statements only there): PESASWITCH_TEST_PG_LOG_DIR=/some/dir.
        keep = os.environ.get("PESASWITCH_TEST_PG_LOG_DIR")
        if keep and log.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(log, Path(keep) / f"postgresql-{port}.log")
        shutil.rmtree(root, ignore_errors=True)
