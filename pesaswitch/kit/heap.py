"""The cyclic garbage collector, tuned once for a long-running process.

CPython's collector runs a young collection every 700 net container allocations and,
every hundred of those, a full one that walks every object the process holds: the
modules, FastAPI's routes and SQLAlchemy's mappers, several hundred thousand objects
that live as long as the process. On the gateway that was ~10 % of its CPU per payment
(py-spy, bench/issue-11-rounds-2.md, eleventh round).

Only for the processes the CLI starts (``serve``, ``worker``, ``simulator``), once what
they run is built: a test suite that builds hundreds of applications in one process must
not keep each of them alive.
"""

from __future__ import annotations

import gc

# Net container allocations between young collections (CPython's default is 700). A
# request allocates a few thousand; most are freed by reference counting before any
# collection sees them, so a larger young generation holds little more memory.
YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Collect what startup left behind, then leave every object alive now out of all
    later collections (``gc.freeze``) and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
