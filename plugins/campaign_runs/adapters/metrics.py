"""Metrics through Airflow's own pipeline: StatsD, Datadog or OpenTelemetry, as ``[metrics]`` configures them.

Every name is prefixed ``campaign_runs.`` here (and ``[metrics] statsd_prefix``, ``airflow`` by default, by
Airflow). A metric never fails the action that emits it.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "campaign_runs."
_lock = threading.Lock()
_initialized = False


def _stats() -> Any:
    """Airflow's Stats, configured from ``[metrics]`` in processes Airflow did not configure (the CLI)."""
    global _initialized
    from airflow._shared.observability.metrics import stats

    with _lock:
        # Airflow's servers (scheduler, API server, triggerer) configure Stats when they start; others never do.
        if not _initialized and getattr(stats, "_factory", None) is None:
            from airflow.configuration import conf
            from airflow.observability.metrics import stats_utils

            stats.initialize(
                factory=stats_utils.get_stats_factory(),
                export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
            )
        _initialized = True
    return stats.Stats


def incr(name: str, count: int = 1, tags: dict[str, str] | None = None) -> None:
    """Add ``count`` to the counter ``campaign_runs.<name>`` (``tags`` reach backends that keep them)."""
    try:
        _stats().incr(PREFIX + name, count, tags=tags)
    except Exception:
        log.warning("Could not send metric %s", name, exc_info=True)


def gauge(name: str, value: float) -> None:
    """Set the gauge ``campaign_runs.<name>``."""
    try:
        _stats().gauge(PREFIX + name, value)
    except Exception:
        log.warning("Could not send metric %s", name, exc_info=True)


def timing(name: str, elapsed: timedelta) -> None:
    """Record ``elapsed`` on the timer ``campaign_runs.<name>`` (milliseconds in StatsD)."""
    try:
        _stats().timing(PREFIX + name, elapsed)
    except Exception:
        log.warning("Could not send metric %s", name, exc_info=True)
