"""README.md: short, its two commands where CI reads them, and every relative link pointing at something real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.docs.support import anchors, broken_links, links

pytestmark = pytest.mark.static

README = REPO / "README.md"


def test_every_relative_link_of_the_readme_exists() -> None:
    assert [t for t in links(README) if not t.startswith(("http://", "https://"))], "the README links nothing"
    assert broken_links(README) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    page = REPO / "docs" / "how-to" / "develop.md"
    assert "the-documentation" in anchors(page)
    probe = tmp_path / "probe.md"
    probe.write_text(f"[a]({page}#the-documentation) [b]({page}#no-such-heading) ![c](missing.png)\n")
    assert broken_links(probe) == [f"{page}#no-such-heading", "missing.png"]


def test_the_readme_is_short_and_keeps_its_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    section = text.split("\n## The two commands\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^make run\b", section, re.M)
    assert re.search(r"^make test\b", section, re.M)
