"""Progress per channel from the ``send_<channel>`` tasks' XCom reports: run details, the run schedule, the Monitor."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import tasks
from campaign_runs.core.dto import ChannelProgress

if TYPE_CHECKING:
    from collections.abc import Mapping

    from campaign_runs.adapters.tasks import ProgressReport, TaskRow
    from campaign_runs.core.channel_delivery import ChannelDelivery

NUMBERS = ("total", "sent", "failed", "in_doubt", "suppressed")  # a channel's counts; ``skipped`` is by reason


def count(value: Any) -> int:
    """A reported count as a non-negative int (0 for anything else)."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _add(entry: dict[str, Any], value: dict[str, Any]) -> None:
    """Add one task instance's report to its channel's sums (mapped tasks: one report per shard)."""
    for key in NUMBERS:
        entry[key] += count(value.get(key))
    skipped = value.get("skipped")
    for reason, number in skipped.items() if isinstance(skipped, dict) else ():
        if count(number):
            entry["skipped"][str(reason)] = entry["skipped"].get(str(reason), 0) + count(number)


def channel_progress(
    channels: list[str],
    reports: list[ProgressReport],
    task_rows: list[TaskRow],
    deliveries: Mapping[str, ChannelDelivery] | None = None,
) -> list[ChannelProgress]:
    """Progress per channel: every declared channel (then any other that reported), mapped tasks summed.

    ``deliveries`` says how each channel delivers (``core.channel_delivery``): its transport or a dry run.
    """
    deliveries = deliveries or {}
    reported: dict[str, dict[str, Any]] = {}
    for report in reports:
        name = str(report.value.get("channel") or report.task_id.removeprefix(tasks.CHANNEL_TASK_PREFIX))
        entry = reported.setdefault(name, {"task_id": report.task_id, **dict.fromkeys(NUMBERS, 0), "skipped": {}})
        _add(entry, report.value)
    states: dict[str, str | None] = {}
    for row in task_rows:
        states.setdefault(row.task_id, row.state)
    rows = []
    for channel in [*channels, *sorted(set(reported) - set(channels))]:
        data = reported.get(channel)
        task_id = data["task_id"] if data else f"{tasks.CHANNEL_TASK_PREFIX}{channel}"
        numbers: dict[str, Any] = {key: data[key] if data else None for key in (*NUMBERS, "skipped")}
        found = ChannelProgress(channel=channel, task_id=task_id, task_state=states.get(task_id), **numbers)
        how = deliveries.get(channel)
        rows.append(replace(found, delivery=how.label, dry_run=how.dry_run) if how is not None else found)
    return rows
