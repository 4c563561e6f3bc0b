"""How the pages show times, durations and campaign docs."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from markupsafe import Markup


def fmt_time(value: datetime | None) -> str:
    """A time as the pages show it."""
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value is not None else ""


def fmt_duration(seconds: float | None) -> str:
    """A duration as the pages show it: 5s, 2m 05s, 1h 02m 05s."""
    if seconds is None:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})


def render_markdown(text: str | None) -> Markup:
    """Campaign docs as HTML; raw HTML in the source is escaped, not rendered."""
    return Markup(_markdown().render(text or ""))  # markdown-it escapes raw HTML (html=False)
