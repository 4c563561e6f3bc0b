"""The private Airflow environment every process benchmark starts from: its own home, DB, DAGs and SMTP port."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def environment(home: Path, dags: Path, smtp_port: int, **settings: str) -> dict[str, str]:
    """Airflow under ``home`` (migrated), DAGs from ``dags``, email to ``smtp_port``; exported here too."""
    from tests.support import airflow_env

    env = dict(os.environ)
    env.update(airflow_env.environment(home))
    pythonpath = [str(REPO), env.get("PYTHONPATH", "")]
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__SMTP__SMTP_PORT": str(smtp_port),
            "AIRFLOW__CAMPAIGN_RUNS__SINK_DIR": str(home / "sinks"),
            "PYTHONPATH": os.pathsep.join(part for part in pythonpath if part),
            **settings,
        }
    )
    os.environ.update(env)
    airflow_env.migrate(env)
    return env
