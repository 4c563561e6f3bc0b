"""A campaign's "not before" instant, kept beside its YAML file: ``.campaign-runs/<id>.json`` in the same folder.

The plugin writes it when it creates or resumes a campaign (the campaign's definition does not change, so no new
version is recorded); the loader reads it into the campaign's timetable at every parse. A hidden folder, so the
loader never takes it for a campaign file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from campaign_runs.factory.spec import CampaignSpec

STATE_FOLDER = ".campaign-runs"
MAX_STATE_BYTES = 4096


class ScheduleStateError(ValueError):
    """A state file that cannot be read: the campaign is not loaded rather than run on a guess."""


def state_path(folder: Path, dag_id: str) -> Path:
    """Where campaign ``dag_id``'s state lives, for a campaign file in ``folder``."""
    return folder / STATE_FOLDER / f"{dag_id}.json"


def state_text(not_before: dt.datetime) -> str:
    """The state file's content for ``not_before`` (aware; written in UTC)."""
    if not_before.tzinfo is None:
        raise ValueError("not_before must be an aware datetime")
    return json.dumps({"not_before": not_before.astimezone(dt.UTC).isoformat()}) + "\n"


def read_not_before(folder: Path, dag_id: str) -> dt.datetime | None:
    """The "not before" instant written for ``dag_id``; None when there is none."""
    path = state_path(folder, dag_id)
    try:
        if path.is_symlink() or not path.is_file():
            return None
        if path.stat().st_size > MAX_STATE_BYTES:
            raise ScheduleStateError(f"{path.name}: larger than {MAX_STATE_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = data.get("not_before") if isinstance(data, dict) else None
        moment = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except (OSError, ValueError) as error:
        raise ScheduleStateError(f"{path.name}: {error}") from error
    if moment is None or moment.tzinfo is None:
        raise ScheduleStateError(f"{path.name}: not_before must be an ISO 8601 instant with its offset")
    return moment.astimezone(dt.UTC)


def with_schedule_state(spec: CampaignSpec) -> CampaignSpec:
    """``spec`` with the later of its declared and its written "not before" instant (``schedule_state``)."""
    written = read_not_before(spec.source.parent, spec.source.stem)
    declared = spec.schedule.not_before
    if written is None or (declared is not None and declared >= written):
        return spec
    return dataclasses.replace(spec, schedule=dataclasses.replace(spec.schedule, not_before=written))
