"""The chaos run's short profile (chaos/run.py, docs/chaos.md), on the suite's database
(PostgreSQL: `make test-sqlite` deselects it).

Real processes: `serve --workers 2`, two workers, the standalone simulator with its
seeded faults and the misbehaving receiver; SIGKILLs every few seconds and, on
PostgreSQL, a restart of its own throwaway cluster. Every check of the full run must
hold; the seed is fixed so that a failure can be replayed with the printed command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 14

# On PostgreSQL only, the database the short profile also restarts: `make chaos` runs the
# full profile on both, and one short run per `make test` is what the time allows.
pytestmark = pytest.mark.postgres_only


@pytest.mark.timeout(600)  # the harness bounds itself; on a busy machine it starts slowly
def test_short_chaos_profile(request: pytest.FixtureRequest) -> None:
    db = request.config.getoption("--db")
    command = [
        sys.executable, "-m", "chaos.run", "--db", db, "--seed", str(SEED),
        "--payments", "400", "--payouts", "40", "--accounts", "20",
        "--load-timeout", "150", "--quiet-timeout", "120",
    ]  # fmt: skip
    harness = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        report, _ = harness.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        harness.terminate()  # SIGTERM: the harness stops every process it started
        report, _ = harness.communicate(timeout=60)
    print(report)  # the figures, shown by pytest -s or on failure
    assert harness.returncode == 0, report[-6000:]
    assert "chaos: all checks passed" in report
    assert "kills" in report
