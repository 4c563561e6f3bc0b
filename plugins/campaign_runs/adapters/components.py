"""Which Airflow component a listener hook was called in."""

from __future__ import annotations

import sys
from typing import Any


def is_scheduler(component: Any) -> bool:
    """Whether ``component`` is the job of an ``airflow scheduler`` process."""
    # Job.job_type is set only after on_starting fires, so look at the process's command.
    from airflow.jobs.job import Job

    return isinstance(component, Job) and "scheduler" in sys.argv[1:3]
