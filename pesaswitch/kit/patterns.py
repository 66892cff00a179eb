"""Regular expressions that merchants write (a C2B channel's ``account_pattern``), run
by RE2 instead of Python's ``re``.

Python's ``re`` backtracks: ``(a+)+$`` against forty ``a``s and a ``!`` takes longer than
anyone waits, on the event loop, while Daraja's validation has about 8 seconds (a pattern
an attacker saves, or a payer's account number an attacker chooses, would stall every
validation of the process). RE2 matches in time linear in the input and refuses what
would need backtracking (backreferences, lookaround), so a pattern RE2 cannot compile is
refused when it is saved. Its syntax: https://github.com/google/re2/wiki/Syntax
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

# A pattern's compiled program may use this much memory; bigger ones (huge counted
# repetitions such as (a{1000}){1000}) fail to compile and are refused.
MAX_PROGRAM_BYTES = 1 << 20


class UnsafePattern(ValueError):
    """Not a pattern RE2 runs (bad syntax, backtracking features, or too large)."""


def _options() -> Any:
    options = re2.Options()
    options.max_mem = MAX_PROGRAM_BYTES
    # RE2 would print each refusal to stderr through absl; the caller reports it instead.
    options.log_errors = False
    return options


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise UnsafePattern(str(reason)) from exc


def check_pattern(pattern: str) -> None:
    """Raise ``UnsafePattern`` unless RE2 compiles ``pattern``."""
    _compiled(pattern)


def full_match(pattern: str, text: str) -> bool:
    """Whether the whole of ``text`` matches ``pattern`` (``UnsafePattern`` if RE2
    cannot compile it, e.g. one saved before patterns were checked this way)."""
    return _compiled(pattern).fullmatch(text) is not None
