"""The README and the docs pages that opt in run top to bottom, as printed.

Each page runs in its own shell against its own fresh `make run` equivalent (a clean
``var/``); ``tests/docs/pages.py`` has the conventions, ``tests/docs/answers.py`` how a
shown JSON answer is matched. The gateway is SQLite, as `make run`'s is, whichever
``--db`` the suite runs with.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs import answers
from tests.docs.pages import Mode, is_walkthrough, parse
from tests.docs.runner import EXAMPLE_URLS, REPO, Walkthrough

PAGES = [REPO / "README.md", *sorted(p for p in (REPO / "docs").rglob("*.md") if is_walkthrough(p))]


@pytest.mark.timeout(420)
@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_the_page_runs_as_printed(page: Path, tmp_path: Path) -> None:
    blocks = parse(page.read_text())
    assert any(b.runs and b.mode is Mode.RUN for b in blocks), "a walkthrough with no commands"
    walk = Walkthrough(str(page.relative_to(REPO)), blocks, tmp_path)
    try:
        walk.start()
        walk.run_all()
    finally:
        walk.stop()
    assert walk.ran == sum(b.runs and b.mode is not Mode.GATEWAY for b in blocks)


def test_the_readme_and_the_quick_start_are_walkthroughs() -> None:
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"README.md", "docs/quickstart.md"} <= names
    readme = parse((REPO / "README.md").read_text())
    assert next(b.mode for b in readme if b.runs) is Mode.GATEWAY  # make run comes first


def test_the_example_urls_are_the_examples_own_defaults() -> None:
    sources = "\n".join(p.read_text() for p in (REPO / "examples").rglob("*.p*"))
    for name, url in EXAMPLE_URLS.items():
        assert re.search(rf"{name}.*{re.escape(url)}", sources), name


class TestAnswers:
    def test_stated_values_and_elisions(self) -> None:
        shown = '{"id": "pay_…", "status": "pending", "amount": 10, "list": [1, …], …}'
        good = '{"id": "pay_01ABC", "status": "pending", "amount": 10, "list": [1, 2], "x": 1}'
        assert answers.compare(shown, good) is None
        assert "status" in (answers.compare(shown, good.replace("pending", "failed")) or "")
        assert answers.compare(shown, good.replace("pay_", "po_")) is not None
        assert answers.compare(shown, good.replace("10", '"10"')) is not None  # types too

    def test_the_fields_shown_are_all_there_are_without_an_elision(self) -> None:
        assert answers.compare('{"a": 1}', '{"a": 1, "b": 2}') is not None
        assert answers.compare('{"a": [1]}', '{"a": [1, 2]}') is not None
        assert answers.compare('{"a": "…"}', '{"a": {"deep": true}}') is None

    def test_several_documents_in_order(self) -> None:
        assert answers.compare('{"a": 1}\n{"b": 2}', '{"a":1}{"b":2}') is None
        assert answers.compare('{"a": 1}\n{"b": 2}', '{"b":2}{"a":1}') is not None
        assert answers.compare('{"a": 1}', "not json") is not None
        assert answers.compare('{"a": 1}', '{"a":1}{"a":1}') is not None

    def test_a_placeholder_in_a_block_that_runs_is_refused(self) -> None:
        with pytest.raises(ValueError, match="placeholder"):
            parse("```sh\nexport KEY=sk_test_...\n```\n")
        with pytest.raises(ValueError, match="answers no shell block"):
            parse('Some prose.\n\n```json\n{"a": 1}\n```\n')
        skipped = parse("<!-- walkthrough: skip -->\n```sh\nexport KEY=sk_live_…\n```\n")
        assert [b.runs for b in skipped] == [False]
