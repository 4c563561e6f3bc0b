"""The campaign timetable: Airflow's cron trigger timetable that never runs a slot before its "not before" instant.

Create and Resume write the instant (``schedule_state``); the DAG file carries it into the timetable, so every
parse, every scheduler and every restart of Airflow computes the same next run. Runs the user asks for (Run
now, Restart, a backfill, Resume ``all``) do not go through the timetable and are not held back by it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.trigger import CronTriggerTimetable

FIRST_RUN_GRACE = dt.timedelta(minutes=5)  # how late a first slot may be found (the dag-processor's parse lag)


def _utc(moment: dt.datetime) -> pendulum.DateTime:
    return pendulum.instance(moment.astimezone(dt.UTC))


class CampaignTimetable(CronTriggerTimetable):
    """A cron trigger timetable whose slots start at ``not_before`` (UTC) at the earliest."""

    def __init__(self, cron: str, *, timezone: str | Any, not_before: dt.datetime | None = None) -> None:
        super().__init__(cron, timezone=timezone)
        self.not_before = _utc(not_before) if not_before is not None else None

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CampaignTimetable:
        """The timetable the DAG file serialized."""
        raw = data.get("not_before")
        not_before = dt.datetime.fromisoformat(raw) if raw else None
        return cls(data["expression"], timezone=data["timezone"], not_before=not_before)

    def serialize(self) -> dict[str, Any]:
        """Airflow's cron trigger fields plus ``not_before`` (ISO 8601, UTC)."""
        data = dict(super().serialize())
        data["not_before"] = self.not_before.isoformat() if self.not_before is not None else None
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CampaignTimetable):
            return NotImplemented
        return bool(super().__eq__(other)) and self.not_before == other.not_before

    def __hash__(self) -> int:
        return hash((self._expression, self._timezone, self.not_before))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """Airflow's answer, as if no run before ``not_before`` existed and the DAG started there.

        Without ``not_before`` (a file written by hand), a campaign's first run is the latest past slot only while
        it is at most ``FIRST_RUN_GRACE`` old, never an older one: a new campaign does not send a passed slot.
        A restriction with a ``latest`` bound is a range someone asked for (a backfill, Resume ``all``): it is
        answered as Airflow's own timetable would (campaigns have no ``end_date``, so the scheduler's has none).
        """
        not_before = self.not_before
        if restriction.latest is not None:
            return super().next_dagrun_info(
                last_automated_data_interval=last_automated_data_interval, restriction=restriction
            )
        if not_before is None:
            if last_automated_data_interval is None and not restriction.catchup:
                not_before = _utc(dt.datetime.now(dt.UTC) - FIRST_RUN_GRACE)
            else:
                return super().next_dagrun_info(
                    last_automated_data_interval=last_automated_data_interval, restriction=restriction
                )
        last = last_automated_data_interval
        if last is not None and last.end < not_before:
            last = None  # slots before the instant are behind us, whatever ran then
        earliest = not_before if restriction.earliest is None else max(restriction.earliest, not_before)
        return super().next_dagrun_info(
            last_automated_data_interval=last,
            restriction=TimeRestriction(earliest, restriction.latest, restriction.catchup),
        )

    def allows(self, run_after: dt.datetime) -> bool:
        """Whether a scheduled run at ``run_after`` is one of this timetable's slots at or after ``not_before``."""
        moment = _utc(run_after)
        if self.not_before is not None and moment < self.not_before:
            return False
        return bool(self._align_to_next(moment) == moment)
