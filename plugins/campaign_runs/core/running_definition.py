"""A Configure and the runs under way: the DAG's shape stays while runs are active, the next run is the new one.

A running run keeps the channel settings its ``build_audience`` found (the factory freezes them in its XCom), so a
change of content applies from the next run. A change of shape (channels, shards) would change the tasks a
running run still has to run, so it is refused while runs are active.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import campaign_control as control
from campaign_runs.adapters import dags
from campaign_runs.adapters import definitions as files
from campaign_runs.core import definition_folders, not_before
from campaign_runs.domain import ConflictError
from campaign_runs.factory.schedule_state import with_schedule_state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def shape_of(spec: Any) -> tuple[tuple[str, int], ...]:
    """The tasks a campaign's DAG has: its channels and the shards of each."""
    return tuple(sorted((channel.name, channel.shards) for channel in spec.channels))


def check_shape_change(dag_id: str, before: Any | None, after: Any, session: Session) -> None:
    """Refuse a change of channels or shards while runs of ``dag_id`` are queued or running."""
    if before is None or shape_of(before) == shape_of(after):
        return
    active = control.active_run_ids(dag_id, session)
    if active:
        raise ConflictError(
            f"Runs {', '.join(active)} of {dag_id!r} are under way, and this change adds or removes channels or "
            "shards, which would change the tasks they still have to run. Save it once they have ended, or stop "
            "them first; a change of templates, rates or audience can be saved now and applies from the next run."
        )


NOT_LOADED = (
    "Saved, but Airflow has not loaded the new schedule yet (is the dag-processor running?): until it does, its "
    "next run is the old schedule's, and a run for an old slot sends nothing."
)


def schedule_changed(before: Any | None, after: Any) -> bool:
    """Whether a save changes when the campaign runs (cron or timezone)."""
    if before is None:
        return True
    old, new = before.schedule, after.schedule
    return bool((old.expression, old.timezone) != (new.expression, new.timezone))


def after_save(dag_id: str, before: Any | None, after: Any, session: Session) -> str:
    """What a saved Configure tells the user, once a changed schedule is the one Airflow runs (or why not yet)."""
    if not schedule_changed(before, after):
        return "Saved; waiting for Airflow to reload it."
    if wait_for_new_schedule(dag_id, after, session):
        return "Saved; Airflow runs it on the new schedule."
    return NOT_LOADED


def wait_for_new_schedule(dag_id: str, spec: Any, session: Session) -> bool:
    """Wait until Airflow has loaded the saved schedule, then show its next run; False when it did not in time.

    Until the dag-processor has parsed the new file, the scheduler still works from the version it has: a parse
    that read the old file can set the old cron's slot after any value written here. Once the new version is
    loaded, no such parse is left, and the next run shown is the one Airflow will create.
    """
    if dags.get_dag(dag_id, session) is None:
        return True  # not loaded yet at all: nothing shows a next run
    session.commit()  # nothing is held while the dag-processor parses (SQLite: a reader would block its commit)
    if not not_before.wait_for(lambda: control.loaded_schedule_is(dag_id, spec.schedule)):
        return False
    show_next_run(dag_id, spec, session)
    return True


def show_next_run(dag_id: str, spec: Any, session: Session) -> None:
    """Make the DAG's next run the one the saved schedule gives."""
    dag = dags.get_dag(dag_id, session)
    schedule = spec.schedule
    if dag is None or not schedule.expression:
        return
    folder = definition_folders.home_of(dag_id) or definition_folders.written()
    placed = dataclasses.replace(spec, source=files.path_of(folder, dag_id))  # validated from text: no folder yet
    instant = with_schedule_state(placed).schedule.not_before  # the loader's rule: the later of file and YAML
    control.set_next_slot(dag, control.next_slot(dag_id, schedule, instant, session))
