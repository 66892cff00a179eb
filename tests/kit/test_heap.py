"""kit.heap: what a `serve`, `worker` or `simulator` process does to the collector once
it is built. Each check runs in a process of its own: settling the suite's process would
keep every app the other tests build alive, and its full collection would run the
finalizers of other tests' leftovers here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pesaswitch.kit.heap import YOUNG_THRESHOLD


def run_python(script: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_settle_heap_freezes_what_lives_and_raises_only_the_young_threshold() -> None:
    script = """
import gc
from pesaswitch.kit.heap import settle_heap
_, middle, old = gc.get_threshold()
alive = [[index] for index in range(1000)]
settle_heap()
assert gc.get_freeze_count() >= len(alive), gc.get_freeze_count()
# Frozen objects are in no generation: a full collection no longer walks them.
tracked = {id(item) for item in gc.get_objects()}
assert not any(id(item) in tracked for item in alive), "live objects left in a generation"
print(*gc.get_threshold(), middle, old)
"""
    young, middle, old, default_middle, default_old = map(int, run_python(script).split())
    assert (young, middle, old) == (YOUNG_THRESHOLD, default_middle, default_old)


def test_cycles_made_after_settling_are_still_collected() -> None:
    script = """
import gc, weakref
from pesaswitch.kit.heap import settle_heap
settle_heap()
class Node: pass
node = Node(); node.self = node
ref = weakref.ref(node)
del node
gc.collect()
print("freed" if ref() is None else "kept")
"""
    assert run_python(script) == "freed"


def test_the_factory_of_serve_with_workers_builds_the_app_and_settles_its_heap(
    tmp_path: Path,
) -> None:
    script = """
import gc
from fastapi import FastAPI
from pesaswitch.app import create_served_app
app = create_served_app()
assert isinstance(app, FastAPI)
print(gc.get_threshold()[0], gc.get_freeze_count() > 100_000)
"""
    database = f"sqlite+aiosqlite:///{tmp_path / 'heap.db'}"
    out = run_python(script, {"PESASWITCH_DATABASE_URL": database})
    assert out == f"{YOUNG_THRESHOLD} True"
