"""The ``subscribers`` table of the shipped weekly_newsletter campaign, seeded for the tests as ``make run`` seeds it.

``scripts.seed_subscribers`` writes the SQLite file once per test process (in the session's private AIRFLOW_HOME);
``subscribers_environment()`` is the Connection ``subscribers_db`` pointing at it, for ``dag.test()`` runs (the
``tests/dags`` fixture sets it) and for every process an ``AirflowStack`` starts.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

from scripts.seed_subscribers import CONN_ENV, FILE_NAME, connection_value, seed


@functools.cache
def subscribers_database() -> Path:
    """The seeded SQLite file of this test process."""
    home = os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="campaign-subscribers-")
    path = Path(home) / FILE_NAME
    seed(path)
    return path


def subscribers_environment() -> dict[str, str]:
    """``AIRFLOW_CONN_SUBSCRIBERS_DB`` for the seeded file."""
    return {CONN_ENV: connection_value(subscribers_database())}
