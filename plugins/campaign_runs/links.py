"""URLs of the plugin's pages, for emails and for the React UI's external views."""

from __future__ import annotations

from urllib.parse import quote

# The FAB provider serves plugin views under this prefix inside the API server.
FAB_PREFIX = "/pluginsv2"
ROUTE_BASE = "/campaigns"


def campaign_path(dag_id: str) -> str:
    """Path of the campaign display."""
    return f"{FAB_PREFIX}{ROUTE_BASE}/display/{quote(dag_id, safe='')}"


# Characters of run ids (Airflow's ``allowed_run_id_pattern``: ``scheduled__2026-03-02T08:00:00+00:00``) kept as
# they are in the pages' paths: Airflow's Campaigns menu keeps its URL in step with its frame's and, seeing an
# escaped ``:`` or ``+`` come back unescaped, loads the frame again, losing a form being sent or its answer.
RUN_ID_SAFE = ":+"


def run_path(dag_id: str, run_id: str) -> str:
    """Path of a run's details."""
    return f"{campaign_path(dag_id)}/run/{quote(run_id, safe=RUN_ID_SAFE)}"


def absolute(base_url: str, path: str) -> str:
    """``path`` under the configured base URL."""
    return f"{base_url.rstrip('/')}{path}"


# ``url_route`` of the plugin's external views (plugin.py): Airflow's React UI serves a DAG's tab at
# ``/dags/<dag_id>/plugin/<url_route>`` and a DAG run's at ``/dags/<dag_id>/runs/<run_id>/plugin/<url_route>``.
DAG_TAB_ROUTE = "campaign"
RUN_TAB_ROUTE = "campaign-run"


def campaign_tab_path(dag_id: str) -> str:
    """The DAG's Campaign tab in Airflow's UI (the campaign display inside Airflow)."""
    return f"/dags/{quote(dag_id, safe='')}/plugin/{DAG_TAB_ROUTE}"


def run_tab_path(dag_id: str, run_id: str) -> str:
    """The DAG run's Campaign run tab in Airflow's UI (the run's details inside Airflow)."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/plugin/{RUN_TAB_ROUTE}"


def airflow_task_path(dag_id: str, run_id: str, task_id: str) -> str:
    """A task instance (with its log) in Airflow's own UI."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
