"""What New and the campaigns page show about definitions: the schedule preview, broken and waiting files."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaign_runs.adapters import definitions as files
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.core import definition_folders
from campaign_runs.core.definition_text import folder, validate_text
from campaign_runs.domain import CampaignRunsError, DefinitionInvalidError, utcnow

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.orm import Session

PREVIEW_COUNT = 10


@dataclass(frozen=True)
class FireTime:
    """One upcoming run of a schedule, in the campaign's timezone and in UTC."""

    local: datetime
    utc: datetime


@dataclass(frozen=True)
class SchedulePreview:
    """A cron expression in plain words and its next fire times."""

    cron: str | None
    timezone: str
    description: str
    times: list[FireTime]


@dataclass(frozen=True)
class BrokenDefinition:
    """A campaign file Airflow cannot load, with the field and the reason."""

    file: str
    field: str
    message: str


def starts_paused() -> bool:
    """Whether a campaign New creates starts paused (Airflow's ``[core] dags_are_paused_at_creation``)."""
    return files.paused_at_creation()


def preview_schedule(cron: str | None, timezone: str, *, count: int = PREVIEW_COUNT) -> SchedulePreview:
    """The schedule in plain words and its next ``count`` fire times, as Airflow's timetable computes them."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: a tzdata folder ("Europe")
        raise DefinitionInvalidError("schedule.timezone", f"unknown timezone {timezone!r}") from error
    _, schedule_module = files.factory()
    if cron is None or schedule_module.is_manual(cron):  # the factory's own words for "no schedule"
        return SchedulePreview(None, timezone, str(schedule_module.MANUAL_DESCRIPTION), [])
    try:
        description = files.describe_cron(cron)
        times = files.fire_times(_five_fields(cron), timezone, utcnow(), count)
    except ValueError as error:
        raise DefinitionInvalidError("schedule.cron", str(error)) from error
    return SchedulePreview(
        cron.strip(),
        timezone,
        description,
        [
            FireTime(datetime.fromtimestamp(t.timestamp(), tz=zone), datetime.fromtimestamp(t.timestamp(), tz=UTC))
            for t in times
        ],
    )


def _five_fields(cron: str) -> str:
    """The cron of a preset, checked like the factory checks it (five fields, values in range)."""
    _, schedule_module = files.factory()
    return str(schedule_module.validate_cron(cron))


_broken_cache: dict[str, tuple[tuple[int, int], BrokenDefinition | None]] = {}
_broken_lock = threading.Lock()


def _check_file(path: Path) -> BrokenDefinition | None:
    try:
        text = files.read(path)
    except files.NotRegularFile:  # no symbolic link is followed: its target's content is nobody's to show here
        return None
    if text is None:
        return None
    try:
        dag_id, _ = validate_text(text)
    except DefinitionInvalidError as error:
        return BrokenDefinition(path.name, error.field, error.reason)
    except CampaignRunsError as error:
        return BrokenDefinition(path.name, "", str(error))
    if f"{dag_id}{files.SUFFIX}" != path.name:
        return BrokenDefinition(path.name, "id", f"is {dag_id!r} but the file is named {path.name}")
    return None


def broken_definitions() -> list[BrokenDefinition]:
    """Campaign files the loader skips, each with its error (a file is re-checked only when it changes).

    Both campaigns folders count (``definition_folders``); an id in both is one entry: the loader loads neither.
    """
    by_id: dict[str, list[Path]] = {}
    for where in definition_folders.every():
        for path in files.listing(where):
            by_id.setdefault(path.stem, []).append(path)
    found: list[BrokenDefinition] = []
    for dag_id, paths in sorted(by_id.items()):
        if len(paths) > 1:
            found.append(BrokenDefinition(paths[0].name, "", definition_folders.defined_twice(dag_id)))
        elif (broken := _checked(paths[0])) is not None:
            found.append(broken)
    return found


def _checked(path: Path) -> BrokenDefinition | None:
    """``_check_file`` of ``path``, from the cache while the file has not changed."""
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _broken_lock:
        cached = _broken_cache.get(str(path))
    if cached is None or cached[0] != stamp:
        cached = (stamp, _check_file(path))
        with _broken_lock:
            _broken_cache[str(path)] = cached
    return cached[1]


def visible_broken(found: list[BrokenDefinition], readable: set[str], *, may_manage: bool) -> list[BrokenDefinition]:
    """The broken files a user may see: every one for who may create campaigns, else those of DAGs they may read.

    An error quotes the file's content, so it is shown only to who may read that campaign (``readable``: the
    DAG ids the user may read) or may write such files anyway ("Campaign Definitions").
    """
    return found if may_manage else [entry for entry in found if entry.file.removesuffix(files.SUFFIX) in readable]


@provide_session
def waiting_definitions(*, session: Session = NEW_SESSION) -> list[str]:
    """Campaigns saved as files that Airflow has not (re)loaded yet: new ones, and edits newer than the parse."""
    paths = {path.stem: path for path in files.listing(folder())}
    parsed = files.parsed_times(list(paths), session)
    waiting = []
    for dag_id, path in sorted(paths.items()):
        try:
            changed = datetime.fromtimestamp(path.stat().st_mtime, tz=utcnow().tzinfo)
        except FileNotFoundError:
            continue
        when = parsed.get(dag_id, None)
        if dag_id not in parsed or when is None or when < changed:
            waiting.append(dag_id)
    return waiting
