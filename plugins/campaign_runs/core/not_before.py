"""Which slots a campaign may run: the "not before" instant that Create and Resume write for its timetable.

The instant lives beside the campaign's YAML file (``factory.schedule_state``), so every parse computes the same
next run. Resume keeps the campaign paused until Airflow has loaded the new instant: unpausing earlier would let
the scheduler create the missed slot from the version it still has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from campaign_runs.adapters import campaign_control as control
from campaign_runs.adapters import definitions as files
from campaign_runs.core import definition_folders
from campaign_runs.domain import CampaignActionNotAllowedError
from campaign_runs.settings import get_settings

POLL_SECONDS = 0.25


@dataclass(frozen=True)
class CampaignFile:
    """Where a YAML campaign's file is, and whether the plugin may write beside it."""

    folder: Path
    writable: bool


def campaign_file(dag_id: str) -> CampaignFile | None:
    """The YAML campaign file of ``dag_id`` in a campaigns folder; None for a campaign written in Python."""
    folder = definition_folders.home_of(dag_id)
    if folder is None:
        return None
    path = files.path_of(folder, dag_id)
    if path.is_symlink() or not path.is_file():
        return None
    return CampaignFile(folder, files.writable(folder))


def write(found: CampaignFile, dag_id: str, instant: datetime) -> None:
    """Write ``instant`` as campaign ``dag_id``'s "not before" and have the dag-processor parse it next."""
    if not found.writable:
        raise CampaignActionNotAllowedError(
            f"The definitions folder {found.folder} cannot be written, so {dag_id!r} cannot keep this promise "
            f"about its slots: add `not_before: {instant.isoformat()}` under `schedule:` in {dag_id}.yaml, commit "
            "it, and resume once Airflow has loaded it."
        )
    files.write_not_before(found.folder, dag_id, instant)
    files.touch_loader(found.folder)


def wait_until_loaded(dag_id: str, instant: datetime, timeout: float | None = None) -> None:
    """Return once Airflow's latest version of ``dag_id`` carries ``instant``; raise if it does not in time."""
    if not wait_for(lambda: (loaded := control.loaded_not_before(dag_id)) is not None and loaded >= instant, timeout):
        limit = get_settings().resume_wait_seconds if timeout is None else timeout
        raise CampaignActionNotAllowedError(
            f"Airflow has not loaded {dag_id!r} with its new schedule within {limit:g} s (is the dag-processor "
            "running?). The campaign stays paused and no missed slot runs; resume it again once Airflow has "
            "parsed it."
        )


def wait_for(loaded: Callable[[], bool], timeout: float | None = None) -> bool:
    """Poll ``loaded`` until it is true (True) or ``[campaign_runs] resume_wait_seconds`` pass (False)."""
    deadline = time.monotonic() + (get_settings().resume_wait_seconds if timeout is None else timeout)
    while not loaded():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True
