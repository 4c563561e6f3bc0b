"""Campaign schedules: cron presets, Airflow timetables and plain-words descriptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cron_descriptor import FormatError, MissingFieldError, Options, WrongArgumentError, get_description
from croniter import croniter

if TYPE_CHECKING:
    import datetime as dt

    from campaign_runs.factory.timetable import CampaignTimetable

PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
MANUAL_WORDS = frozenset({"", "none", "null", "manual"})
MANUAL_DESCRIPTION = "Triggered manually (no schedule)"


def is_manual(expr: str | None) -> bool:
    """Whether a schedule expression means "no schedule, trigger by hand"."""
    return expr is None or expr.strip().lower() in MANUAL_WORDS


def to_cron(expr: str) -> str:
    """The five-field cron expression of a cron string or a preset such as ``@hourly``."""
    text = expr.strip()
    return PRESETS.get(text.lower(), text)


def validate_cron(expr: str) -> str:
    """Return the cron expression of ``expr`` or raise ``ValueError`` saying what is wrong."""
    text = expr.strip()
    if text.startswith("@") and text.lower() not in PRESETS:
        raise ValueError(f"unknown preset {text!r} (known: {', '.join(sorted(PRESETS))})")
    cron = to_cron(text)
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValueError(f"{expr!r} is not a valid five-field cron expression or preset")
    return cron


def describe_schedule(expr: str) -> str:
    """Plain-words description of a cron expression or preset, from ``cron-descriptor``."""
    if is_manual(expr):
        return MANUAL_DESCRIPTION
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(get_description(to_cron(expr), options))
    except (FormatError, MissingFieldError, WrongArgumentError) as error:
        raise ValueError(f"cannot describe schedule {expr!r}: {error}") from error


def timetable(expr: str, timezone: str, not_before: dt.datetime | None = None) -> CampaignTimetable:
    """The timetable that fires at each cron time in ``timezone``, from ``not_before`` on."""
    from campaign_runs.factory.timetable import CampaignTimetable

    return CampaignTimetable(to_cron(expr), timezone=timezone, not_before=not_before)
