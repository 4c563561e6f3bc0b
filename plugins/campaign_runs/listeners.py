"""Listeners: run the housekeeper inside the scheduler process.

Every process that loads plugins imports this module (task processes too), so it imports only the hook
marker; the housekeeper is imported when a scheduler starts.
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
