"""Paths of the campaign pages that ``links`` does not cover: list, work list, actions, JSON status, Airflow UI."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from campaign_runs import links

BASE = f"{links.FAB_PREFIX}{links.ROUTE_BASE}"


def _query(path: str, params: dict[str, object] | None) -> str:
    kept = {key: value for key, value in (params or {}).items() if value not in (None, "", False)}
    return f"{path}?{urlencode(kept)}" if kept else path


def list_path(**params: object) -> str:
    """Path of the campaigns page, with optional query parameters."""
    return _query(f"{BASE}/list", params)


def worklist_path(**params: object) -> str:
    """Path of the work list."""
    return _query(f"{BASE}/worklist", params)


def campaign_path(dag_id: str, **params: object) -> str:
    """Path of the campaign display, with optional query parameters (page, show_skipped)."""
    return _query(links.campaign_path(dag_id), params)


def monitor_path(dag_id: str) -> str:
    """Path of a campaign's Monitor page."""
    return f"{BASE}/monitor/{quote(dag_id, safe='')}"


def run_path(dag_id: str, run_id: str) -> str:
    """Path of a run's details."""
    return links.run_path(dag_id, run_id)


def action_path(dag_id: str, run_id: str, action: str) -> str:
    """Path the Stop / Restart / Skip forms post to."""
    return f"{links.run_path(dag_id, run_id)}/{quote(action, safe='')}"


def status_path(dag_id: str, run_id: str) -> str:
    """Path of a run's JSON status, polled while the run is active."""
    return f"{links.run_path(dag_id, run_id)}/status.json"


def schedule_status_path(dag_id: str) -> str:
    """Path of the JSON statuses of the runs shown on the campaign display."""
    return f"{links.campaign_path(dag_id)}/status.json"


def reassign_path() -> str:
    """Path the work-list reassign form posts to."""
    return f"{BASE}/worklist/reassign"


def airflow_dag_path(dag_id: str) -> str:
    """The DAG's page in Airflow's own UI."""
    return f"/dags/{quote(dag_id, safe='')}"


def airflow_run_path(dag_id: str, run_id: str) -> str:
    """The DAG run's page in Airflow's own UI."""
    return f"{airflow_dag_path(dag_id)}/runs/{quote(run_id, safe='')}"


def airflow_task_path(dag_id: str, run_id: str, task_id: str) -> str:
    """A task instance (with its log) in Airflow's own UI."""
    return links.airflow_task_path(dag_id, run_id, task_id)
