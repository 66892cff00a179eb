"""`pesaswitch serve --workers 2`: two API processes on one port, each with its embedded
worker, against one database and a standalone simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, launch_stack


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = launch_stack(
        database_url, tmp_path_factory.mktemp("logs"), serve_args=("--workers", "2")
    )
    yield running
    running.stop_all()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


async def test_two_api_processes_serve_and_settle(stack: Stack) -> None:
    gateway = stack.processes["gateway"]
    assert len(children(gateway.popen.pid)) >= 2, gateway.output()
    async with stack.client() as client:
        created = await asyncio.gather(
            *(
                client.post(
                    "/v1/payments",
                    headers=stack.shop.auth,
                    json={"amount": 10 + i, "phone": f"07123450{i:02d}"},
                )
                for i in range(20)
            )
        )
        assert [c.status_code for c in created] == [201] * 20
        finals = [await stack.wait_for_status(client, c.json()["id"]) for c in created]
    assert {f["status"] for f in finals} == {"completed"}
    ids = ",".join(f"'{f['id']}'" for f in finals)
    # Each payment settled once: by its callback or, when the reconciler of either
    # process got there first, by a query (its callback then counts as a duplicate).
    rows = await stack.sql(
        f"SELECT payment_id, outcome FROM daraja_callbacks WHERE payment_id IN ({ids})"
    )
    applied = [r.payment_id for r in rows if r.outcome == "applied"]
    assert len(applied) == len(set(applied))
    assert {r.outcome for r in rows} <= {"applied", "duplicate"}
    settled = await stack.sql(f"SELECT settled_by FROM payments WHERE id IN ({ids})")
    assert {r.settled_by for r in settled} <= {"callback", "query"}
    by_query = sum(1 for r in settled if r.settled_by == "query")
    assert len(applied) + by_query == 20
