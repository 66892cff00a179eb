"""Matching what a command printed against the JSON answer a page shows for it.

The answer is written as a reader reads it: JSON, where ``…`` stands for what cannot be
known in advance.

- A bare ``…`` member of an object (``{"id": "pay_…", …}``) means "more fields, not
  shown"; without it the object has exactly the fields shown.
- A bare ``…`` element of an array (``[{…}, …]``) means "more elements"; without it the
  array has exactly the elements shown.
- The string ``"…"`` matches any value; a string with ``…`` in it (``"pay_…"``,
  ``"ws_CO_…"``) matches a string with the other parts in that order.
- Every other value (numbers, ``true``/``false``/``null``, strings) is the stated value
  and must be equal, of the same JSON type.
"""

from __future__ import annotations

import json
import re
from typing import Any

MORE = "\u2026"  # …
_MORE_KEY = "\x00more"


def _mark_elisions(text: str) -> str:
    """Turn bare ``…`` tokens into JSON: a key ``"\\x00more"`` in objects, an element
    ``"\\x00more"`` in arrays."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            stack.pop()
        elif char == MORE:
            char = '"\\u0000more": null' if stack and stack[-1] == "{" else '"\\u0000more"'
        out.append(char)
    return "".join(out)


def documents(text: str) -> list[Any]:
    """The JSON documents in ``text``, one after another (whitespace between)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    text = text.strip()
    while position < len(text):
        value, position = decoder.raw_decode(text, position)
        found.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return found


def expected_documents(text: str) -> list[Any]:
    return documents(_mark_elisions(text))


def mismatch(expected: Any, actual: Any, where: str = "$") -> str | None:
    """None when ``actual`` matches ``expected``; else where and how it differs."""
    if isinstance(expected, str) and MORE in expected:
        if expected == MORE:
            return None
        pattern = ".*".join(re.escape(part) for part in expected.split(MORE))
        if isinstance(actual, str) and re.fullmatch(pattern, actual, re.S):
            return None
        return f"{where}: {actual!r} is not like {expected!r}"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r}"
        shown = {k: v for k, v in expected.items() if k != _MORE_KEY}
        missing = [k for k in shown if k not in actual]
        if missing:
            return f"{where}: no field {missing} in {sorted(actual)}"
        if _MORE_KEY not in expected and set(actual) != set(shown):
            return f"{where}: fields not shown {sorted(set(actual) - set(shown))} (add …)"
        for key, value in shown.items():
            found = mismatch(value, actual[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected an array, got {actual!r}"
        more = bool(expected) and expected[-1] == _MORE_KEY
        shown = expected[:-1] if more else expected
        if len(actual) < len(shown) or (not more and len(actual) != len(shown)):
            return f"{where}: {len(actual)} elements, the page shows {len(shown)}"
        for index, value in enumerate(shown):
            found = mismatch(value, actual[index], f"{where}[{index}]")
            if found:
                return found
        return None
    if type(expected) is not type(actual) or expected != actual:
        return f"{where}: {actual!r}, the page says {expected!r}"
    return None


def compare(expected_text: str, printed: str) -> str | None:
    """None when the printed documents match the answer shown, document by document."""
    expected = expected_documents(expected_text)
    try:
        actual = documents(printed)
    except json.JSONDecodeError as exc:
        return f"the command printed something that is not JSON ({exc}):\n{printed}"
    if len(actual) != len(expected):
        return f"{len(actual)} JSON documents printed, the page shows {len(expected)}:\n{printed}"
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        found = mismatch(want, got, f"document {index + 1}")
        if found:
            return f"{found}\nprinted: {json.dumps(got)}"
    return None


def contains(expected_text: str, printed: str) -> str | None:
    """For a background server: each document shown is among those it printed."""
    lines = [line for line in printed.splitlines() if line.strip().startswith("{")]
    printed_docs = [json.loads(line) for line in lines]
    for want in expected_documents(expected_text):
        if not any(mismatch(want, got) is None for got in printed_docs):
            return f"not printed: {json.dumps(want)}\nprinted:\n{printed}"
    return None
