"""Listeners: run the housekeeper inside the scheduler process, and hand it the campaign runs that end.

Every process that loads plugins imports this module (task processes too), so it imports only the hook
marker; the housekeeper is imported when a scheduler starts, the core when a campaign run ends there.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

from campaign_runs.adapters.components import is_scheduler

if TYPE_CHECKING:
    from campaign_runs.housekeeper import Housekeeper

_housekeeper: Housekeeper | None = None
_lock = threading.Lock()


@hookimpl
def on_starting(component: Any) -> None:
    """Start the housekeeper when a scheduler starts; ignore every other component."""
    global _housekeeper
    if not is_scheduler(component):
        return
    from campaign_runs.housekeeper import Housekeeper

    with _lock:
        if _housekeeper is None:
            _housekeeper = Housekeeper()
        _housekeeper.start()


@hookimpl
def before_stopping(component: Any) -> None:
    """Stop the housekeeper with the scheduler."""
    if not is_scheduler(component):
        return
    with _lock:
        if _housekeeper is not None:
            _housekeeper.stop()


def _run_ended(dag_run: Any) -> None:
    """Hand a campaign run that ended to the housekeeper, which summarises it once the scheduler has committed."""
    housekeeper = _housekeeper
    if housekeeper is None or not housekeeper.running:
        return  # not the scheduler (an API server's mark-as): the scheduler's backfill summarises the run
    tags = getattr(getattr(dag_run, "dag", None), "tags", None)
    if tags is not None:
        from campaign_runs.settings import get_settings

        if get_settings().campaign_tag not in tags:
            return
    from campaign_runs.core.summaries import mark_ended

    mark_ended(dag_run.dag_id, dag_run.run_id)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A run completed: summarise it if it is a campaign's (nothing happens here for other DAGs)."""
    _run_ended(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """A run failed (or a plugin Stop halted it): summarise it if it is a campaign's."""
    _run_ended(dag_run)
