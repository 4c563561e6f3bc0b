"""SECURITY.md's figures are the code's: the caps it names are the caps the parsers apply."""

from __future__ import annotations

from campaign_runs.core.definition_text import MAX_DEFINITION_BYTES
from campaign_runs.factory.documents import MAX_DEPTH, MAX_NODES
from campaign_runs.factory.spec import MAX_FILE_BYTES

from tests.conftest import REPO


def test_the_caps_in_security_md_are_the_codes() -> None:
    text = " ".join((REPO / "SECURITY.md").read_text().split())
    assert f"nesting deeper than {MAX_DEPTH} levels" in text
    assert f"at most {MAX_NODES:,} values" in text
    assert f"{MAX_FILE_BYTES // 1024} KiB per file ({MAX_DEFINITION_BYTES // 1024} KiB through the pages" in text


def test_the_audience_caps_in_security_md_are_the_codes() -> None:
    from campaign_runs.factory.sources import MAX_COLUMNS, MAX_LINE_BYTES, MAX_VALUE_CHARS

    text = " ".join((REPO / "SECURITY.md").read_text().split())
    assert f"at most {MAX_COLUMNS} columns, {MAX_VALUE_CHARS:,} characters per value" in text
    assert f"{MAX_LINE_BYTES // 1024} KiB per file line" in text
