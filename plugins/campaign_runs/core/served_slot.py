"""The slot a run serves: its own dates, or for a restart the slot of the run it restarts (kept in its conf)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.keys import RESTART_OF_KEY, RESTART_SLOT_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable

    from campaign_runs.adapters.runs import DagRunInfo

RESTART_CONF_RUN = RESTART_OF_KEY  # a restart's conf: the first run of the slot it serves
RESTART_CONF_SLOT = RESTART_SLOT_KEY  # and that slot's dates (ISO 8601): logical date, data interval, run after


@dataclass(frozen=True)
class ServedSlot:
    """When the run's slot is (its logical date, else when it was due) and its data interval."""

    at: dt.datetime | None = None
    data_interval_start: dt.datetime | None = None
    data_interval_end: dt.datetime | None = None


def _instant(value: Any) -> dt.datetime | None:
    """An ISO 8601 text (or a datetime) as an aware datetime; None when it is not one."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def restarted_slot(dag_run: DagRunInfo) -> tuple[str, dict[str, Any]] | None:
    """(the run first serving the slot, the slot's dates) when ``dag_run`` is a restart, else None."""
    original, slot = dag_run.conf.get(RESTART_CONF_RUN), dag_run.conf.get(RESTART_CONF_SLOT)
    if not original or not isinstance(slot, dict):
        return None
    return str(original), slot


def originals_due(dag_runs: Iterable[DagRunInfo]) -> list[str]:
    """Runs whose due time a restart needs: restarts of runs without a logical date, from before it was kept."""
    wanted = []
    for dag_run in dag_runs:
        restart = restarted_slot(dag_run)
        if restart is not None and not (restart[1].get("logical_date") or restart[1].get("run_after")):
            wanted.append(restart[0])
    return wanted


def served_slot(dag_run: DagRunInfo, due: dict[str, dt.datetime | None]) -> ServedSlot:
    """The slot ``dag_run`` serves; ``due``: when the restarted runs ``originals_due`` names were due."""
    restart = restarted_slot(dag_run)
    if restart is None:
        return ServedSlot(
            dag_run.logical_date or dag_run.run_after, dag_run.data_interval_start, dag_run.data_interval_end
        )
    original, slot = restart
    at = _instant(slot.get("logical_date")) or _instant(slot.get("run_after")) or due.get(original)
    return ServedSlot(at, _instant(slot.get("data_interval_start")), _instant(slot.get("data_interval_end")))
