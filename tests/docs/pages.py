"""Reading a Markdown page as a walkthrough: its shell blocks, in order, and the JSON answers
shown after them.

Conventions (docs/writing-docs.md says the same for writers):

- The README always runs; a page under docs/ runs when it has ``<!-- walkthrough -->`` on
  a line of its own.
- Every ```` ```sh ```` / ```` ```bash ```` block runs, in one shell, in page order, so a
  variable one block sets is there for the next (``set -euo pipefail``: any failing
  command fails the walkthrough).
- An HTML comment on the line before a fence changes how it runs:
  ``<!-- walkthrough: gateway -->`` (the block starts the gateway, which the harness has
  started already: ``make run``), ``<!-- walkthrough: background -->`` (a server the
  reader runs in another terminal: the harness starts it in the background and waits for
  the ``127.0.0.1`` port the block names), ``<!-- walkthrough: skip -->`` (shown, never
  run: e.g. a production step; also on a ```` ```json ```` block that is not an answer).
- A ```` ```json ```` block right after a shell block (only blank lines between) is what
  that block prints: one or more JSON documents, matched by ``tests/docs/answers.py``.
  After a background block, it lists documents the server must print by the end.
- A block that runs contains no placeholder (``…`` or ``...``): values come from
  variables that earlier blocks set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

PAGE_MARKER = "<!-- walkthrough -->"
SHELL_LANGUAGES = {"sh", "bash", "shell"}
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_NOTE = re.compile(r"<!--\s*walkthrough:\s*([\w-]+)\s*-->\s*$")


class Mode(StrEnum):
    RUN = "run"
    GATEWAY = "gateway"
    BACKGROUND = "background"
    HTTP_ERROR = "http-error"  # shows an error answer: curl does not fail on it
    SKIP = "skip"


@dataclass
class Block:
    line: int
    language: str
    text: str
    mode: Mode
    expected: str | None = None  # the JSON answer shown right after it

    @property
    def runs(self) -> bool:
        return self.language in SHELL_LANGUAGES and self.mode is not Mode.SKIP


def is_walkthrough(path: Path) -> bool:
    """The README, or a page with the marker on a line of its own."""
    lines = path.read_text().splitlines()
    return path.name == "README.md" or PAGE_MARKER in (line.strip() for line in lines)


def parse(markdown: str) -> list[Block]:
    """The page's shell blocks, each with its mode and the JSON answer after it."""
    blocks: list[Block] = []
    previous_end = 0
    last_shell: Block | None = None
    for match in _FENCE.finditer(markdown):
        before = markdown[previous_end : match.start()]
        line = markdown.count("\n", 0, match.start()) + 1
        preceding = markdown[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        note = _NOTE.search(preceding)
        mode = Mode(note.group(1)) if note else Mode.RUN
        language = match.group(1).lower()
        text = match.group(2)
        previous_end = match.end()
        if language == "json" and mode is not Mode.SKIP:
            if last_shell is None or before.strip() or last_shell.expected is not None:
                raise ValueError(f"line {line}: a JSON block that answers no shell block")
            last_shell.expected = text
            continue
        if language in SHELL_LANGUAGES:
            block = Block(line, language, text, mode)
            if block.runs and ("…" in text or "..." in text):
                raise ValueError(f"line {line}: a placeholder in a block that runs:\n{text}")
            blocks.append(block)
            last_shell = block if block.runs else None
        else:
            last_shell = None
    return blocks


def ports(blocks: list[Block]) -> set[int]:
    """Every 127.0.0.1 port the page's blocks and answers name."""
    found: set[int] = set()
    for block in blocks:
        for text in (block.text, block.expected or ""):
            found |= {int(p) for p in re.findall(r"127\.0\.0\.1:(\d{2,5})", text)}
    return found


def rewrite_ports(text: str, mapping: dict[int, int]) -> str:
    return re.sub(
        r"127\.0\.0\.1:(\d{2,5})",
        lambda m: f"127.0.0.1:{mapping.get(int(m.group(1)), int(m.group(1)))}",
        text,
    )
