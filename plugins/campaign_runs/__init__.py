"""Campaign Runs: marketing campaigns as Airflow DAGs, with Stop / Restart / Skip and a work list."""

from __future__ import annotations

__version__ = "0.7.0"
