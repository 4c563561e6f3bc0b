"""What the documentation tests share: the repository's Markdown files, their links, and their headings' anchors."""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify

from tests.conftest import REPO

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6} (.+?)\s*#*$", re.M)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(text: str) -> str:
    """Markdown without its fenced code blocks."""
    return FENCE.sub("", text)


def links(path: Path) -> list[str]:
    """Every link and image target of a Markdown file, outside code blocks."""
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """The anchors MkDocs gives the headings of a Markdown file (Python-Markdown's toc slugify)."""
    headings = HEADING.findall(prose(path.read_text(encoding="utf-8")))
    return {slugify(re.sub(r"[`*]", "", heading), "-") for heading in headings}


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` whose file, or whose heading anchor in a Markdown file, does not exist."""
    broken = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        missing_file = not resolved.is_relative_to(REPO) or not resolved.exists()
        if missing_file or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved)):
            broken.append(target)
    return broken
