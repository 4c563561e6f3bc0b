"""Connect arguments for an Airflow metadata DB on SQLite, the embedded default.

Point ``[database] sql_alchemy_connect_args`` at ``campaign_runs.sqlite_metadata.CONNECT_ARGS`` (``make run`` and
the tests do): every Airflow process then waits up to 60 s for another one's write instead of failing with
"database is locked" after sqlite3's default 5 s, which a busy scheduler and dag-processor can exceed.
"""

from __future__ import annotations

from typing import Any

CONNECT_ARGS: dict[str, Any] = {"timeout": 60}
