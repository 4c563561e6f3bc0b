"""Every measured figure in the docs comes from a run: it appears in a file a benchmark wrote.

A figure is a ratio (``0.90x``, with x or the multiplication sign), a rate (``5,000 msg/s``, ``88,798 rows/s``)
or a duration in milliseconds with a decimal point (``12.5 ms``; settings are written in seconds). Written in
README.md, dags/README.md or docs/ outside ``docs/benchmarks/results/``, it must also appear in one of those
generated files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.static

RESULTS = REPO / "docs" / "benchmarks" / "results"
FIGURE = re.compile(
    "\\b\\d+\\.\\d+\\s?[\u00d7x](?![\\w-])"  # a ratio
    r"|\b\d[\d,]*(?:\.\d+)?\s?(?:msg|messages|rows|emails|requests)/s\b"  # a rate
    r"|\b\d+\.\d+\s?ms\b"  # a measured duration (settings are written in seconds)
)


def pages() -> list[Path]:
    docs = [page for page in (REPO / "docs").rglob("*.md") if RESULTS not in page.parents]
    return [REPO / "README.md", REPO / "dags" / "README.md", *docs]


def generated() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in RESULTS.glob("*.md")) if RESULTS.is_dir() else ""


def figures(text: str) -> list[str]:
    return [match.group(0) for match in FIGURE.finditer(text)]


def test_the_figure_pattern_sees_ratios_rates_and_durations() -> None:
    text = "at 0.90\u00d7 the plain loop, 1.21x slower; 88,798 rows/s, 5000 msg/s; 12.5 ms, 0.25 s; batch 250 at 10/s"
    assert figures(text) == ["0.90\u00d7", "1.21x", "88,798 rows/s", "5000 msg/s", "12.5 ms"]


def test_no_figure_in_the_docs_without_a_generated_source() -> None:
    source = generated()
    orphans = [
        f"{page.relative_to(REPO)}: {figure}"
        for page in pages()
        for figure in figures(page.read_text(encoding="utf-8"))
        if figure not in source
    ]
    assert orphans == [], "figures typed by hand: quote docs/benchmarks/results/ instead"
