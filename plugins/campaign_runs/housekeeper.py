"""Background thread that finishes stopping runs and (re)sends due emails."""

from __future__ import annotations

import logging
import threading

from campaign_runs.settings import get_settings

log = logging.getLogger(__name__)


class Housekeeper:
    """Runs ``core.housekeeping_pass`` every ``[campaign_runs] housekeeping_interval`` seconds."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = interval if interval is not None else get_settings().housekeeping_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="campaign-runs-housekeeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        from campaign_runs.adapters import fork_guard
        from campaign_runs.core.housekeeping import housekeeping_pass

        fork_guard.install()  # the scheduler forks LocalExecutor workers; see adapters/fork_guard.py
        self._stop.wait(self.interval)  # the executor forks its workers as the scheduler starts: let it go first
        while not self._stop.is_set():
            try:
                with fork_guard.held():
                    housekeeping_pass()
            except Exception:
                log.exception("Campaign Runs housekeeping pass failed; retrying")
            self._stop.wait(self.interval)
