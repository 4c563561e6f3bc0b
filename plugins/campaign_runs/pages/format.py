"""How the pages show times, durations and campaign docs, and answer their in-place polls."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    from campaign_runs.core import RunDetails, RunView


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

    # As Airflow's UI renders doc_md: CommonMark with GitHub-flavoured tables, raw HTML off. markdown-it's
    # link validation drops javascript:, vbscript:, file: and non-image data: links.
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(text: str | None) -> Markup:
    """Campaign docs as HTML (with tables); raw HTML in the source is escaped, unsafe links are not links."""
    return Markup(_markdown().render(text or ""))  # markdown-it escapes raw HTML (html=False)


def _flat(prefix: str, value: Any) -> list[tuple[str, str]]:
    """``value`` as ``(field, text)`` pairs, nested fields dotted (``conf.audience_size``)."""
    if isinstance(value, dict) and value:
        named = ((f"{prefix}.{key}" if prefix else str(key), inner) for key, inner in value.items())
        return [pair for name, inner in named for pair in _flat(name, inner)]
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return [pair for index, item in enumerate(value, 1) for pair in _flat(f"{prefix} {index}", item)]
    if isinstance(value, list):
        text = ", ".join(str(item) for item in value) or "none"
    elif value is None or value == {}:
        text = "none"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    return [(prefix.replace("_", " "), text)]


def changes(details: str | None) -> list[tuple[str, str]]:
    """A history entry's recorded details (JSON) as ``(field, value)`` pairs to list; text that is not JSON as is."""
    if not details:
        return []
    try:
        data = json.loads(details)
    except ValueError:
        return [("", details)]
    return [pair for pair in _flat("", data) if pair != ("", "none")]


def run_json(run: RunView, details: RunDetails | None = None) -> dict[str, Any]:
    """A run's status (and, with ``details``, its progress per channel) for the pages' in-place updates."""
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "status": run.status,
        "active": run.is_active,
        "progress_percent": run.progress_percent,
        "tasks_done": run.tasks_done,
        "tasks_total": run.tasks_total,
        "start_date": fmt_time(run.start_date),
        "end_date": fmt_time(run.end_date),
        "duration": fmt_duration(run.duration_seconds),
        "note": run.note or "",
        "allowed_actions": run.allowed_actions,
        "messages": {**asdict(run.messages), "percent": run.messages.percent, "text": run.messages.text},
    }
    if details is not None:
        data["overall_percent"] = details.overall_percent
        data["channels"] = [
            {
                "channel": c.channel,
                "total": c.total,
                "sent": c.sent,
                "failed": c.failed,
                "in_doubt": c.in_doubt,
                "suppressed": c.suppressed,
                "skipped": c.skipped,
                "skipped_text": c.skipped_text,
                "percent": c.percent,
            }
            for c in details.channels
        ]
    return data
