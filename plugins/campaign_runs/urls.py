"""Every URL of the plugin's pages: the paths of both hosts' pages, of Airflow's UI, and absolute links for emails."""

from __future__ import annotations

from urllib.parse import quote, urlencode

# The FAB provider serves plugin views under this prefix inside the API server.
FAB_PREFIX = "/pluginsv2"
ROUTE_BASE = "/campaigns"
FAB_BASE = f"{FAB_PREFIX}{ROUTE_BASE}"  # the campaign pages under FAB's auth manager (pages/fab)
UI_BASE = "/campaign-runs/ui"  # the campaign pages under any other auth manager (pages/asgi)

# Characters of run ids (Airflow's ``allowed_run_id_pattern``: ``scheduled__2026-03-02T08:00:00+00:00``) kept as
# they are in the pages' paths: Airflow's Campaigns menu keeps its URL in step with its frame's and, seeing an
# escaped ``:`` or ``+`` come back unescaped, loads the frame again, losing a form being sent or its answer.
RUN_ID_SAFE = ":+"

# ``url_route`` of the plugin's external views (plugin.py): Airflow's React UI serves a DAG's tab at
# ``/dags/<dag_id>/plugin/<url_route>`` and a DAG run's at ``/dags/<dag_id>/runs/<run_id>/plugin/<url_route>``.
DAG_TAB_ROUTE = "campaign"
RUN_TAB_ROUTE = "campaign-run"
FORM_SCRIPT = "definition_form.js"  # the New and Configure form's script, in the package's static folder


def absolute(base_url: str, path: str) -> str:
    """``path`` under the configured base URL."""
    return f"{base_url.rstrip('/')}{path}"


def campaign_tab_path(dag_id: str) -> str:
    """The DAG's Campaign tab in Airflow's UI (the campaign display inside Airflow)."""
    return f"/dags/{quote(dag_id, safe='')}/plugin/{DAG_TAB_ROUTE}"


def run_tab_path(dag_id: str, run_id: str) -> str:
    """The DAG run's Campaign run tab in Airflow's UI (the run's details inside Airflow)."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/plugin/{RUN_TAB_ROUTE}"


def airflow_dag_path(dag_id: str) -> str:
    """The DAG's page in Airflow's own UI."""
    return f"/dags/{quote(dag_id, safe='')}"


def airflow_run_path(dag_id: str, run_id: str) -> str:
    """The DAG run's page in Airflow's own UI."""
    return f"{airflow_dag_path(dag_id)}/runs/{quote(run_id, safe='')}"


def airflow_task_path(dag_id: str, run_id: str, task_id: str) -> str:
    """A task instance (with its log) in Airflow's own UI."""
    return f"{airflow_run_path(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"


class PageLinks:
    """The paths of the campaign pages under one host's ``base``: ``FAB`` or ``UI`` below (``links`` in templates)."""

    def __init__(self, base: str) -> None:
        self.BASE = base

    @staticmethod
    def _query(path: str, params: dict[str, object]) -> str:
        kept = {key: value for key, value in params.items() if value not in (None, "", False)}
        return f"{path}?{urlencode(kept)}" if kept else path

    def list_path(self, **params: object) -> str:
        """The campaigns page, with optional query parameters."""
        return self._query(f"{self.BASE}/list", params)

    def worklist_path(self, **params: object) -> str:
        """The work list."""
        return self._query(f"{self.BASE}/worklist", params)

    def email_path(self) -> str:
        """Where the work list's My email form posts."""
        return f"{self.BASE}/worklist/email"

    def campaign_path(self, dag_id: str, **params: object) -> str:
        """The campaign display, with optional query parameters (page, show_skipped)."""
        return self._query(f"{self.BASE}/display/{quote(dag_id, safe='')}", params)

    def monitor_path(self, dag_id: str, **params: object) -> str:
        """A campaign's Monitor page, with optional query parameters (``limit``, ``from``, ``to``)."""
        return self._query(f"{self.BASE}/monitor/{quote(dag_id, safe='')}", params)

    def monitor_csv_path(self, dag_id: str, **params: object) -> str:
        """The Monitor's table as CSV, with the page's query parameters."""
        return self._query(f"{self.BASE}/monitor/{quote(dag_id, safe='')}/table.csv", params)

    def monitor_static_path(self, name: str) -> str:
        """A file the Monitor ships (Chart.js and its licence), served by the host."""
        return f"{self.BASE}/monitor/static/{quote(name)}"

    def run_path(self, dag_id: str, run_id: str) -> str:
        """A run's details."""
        return f"{self.campaign_path(dag_id)}/run/{quote(run_id, safe=RUN_ID_SAFE)}"

    def action_path(self, dag_id: str, run_id: str, action: str) -> str:
        """Where the Stop / Restart / Skip forms post."""
        return f"{self.run_path(dag_id, run_id)}/{quote(action, safe='')}"

    def status_path(self, dag_id: str, run_id: str) -> str:
        """A run's JSON status, polled while the run is active."""
        return f"{self.run_path(dag_id, run_id)}/status.json"

    def schedule_status_path(self, dag_id: str) -> str:
        """The JSON statuses of the runs shown on the campaign display."""
        return f"{self.campaign_path(dag_id)}/status.json"

    def reassign_path(self) -> str:
        """Where the work-list reassign form posts."""
        return f"{self.BASE}/worklist/reassign"

    def new_path(self) -> str:
        """The New campaign form."""
        return f"{self.BASE}/new"

    def new_audience_path(self) -> str:
        """Where the New form posts to preview its audience (nothing is saved)."""
        return f"{self.BASE}/new/audience"

    def preview_path(self) -> str:
        """The schedule preview (JSON) the New and Configure form fetches as the user types."""
        return f"{self.BASE}/new/preview.json"

    def form_script_path(self) -> str:
        """The New and Configure form's script, shipped in the package."""
        return f"{self.BASE}/new/static/{FORM_SCRIPT}"

    def configure_path(self, dag_id: str) -> str:
        """The Configure form of a campaign."""
        return f"{self.campaign_path(dag_id)}/configure"

    def configure_audience_path(self, dag_id: str) -> str:
        """Where the Configure form posts to preview its audience (nothing is saved)."""
        return f"{self.configure_path(dag_id)}/audience"

    def check_path(self, dag_id: str) -> str:
        """Where the Configure form posts to check its channels' Connections."""
        return f"{self.configure_path(dag_id)}/check"

    def test_send_path(self, dag_id: str) -> str:
        """Where the Configure form posts to send test messages."""
        return f"{self.configure_path(dag_id)}/test-send"

    def campaign_action_path(self, dag_id: str, action: str) -> str:
        """Where a campaign action's form (Run now, Pause, Resume, Stop all) posts."""
        return f"{self.campaign_path(dag_id)}/actions/{quote(action, safe='')}"

    def suppressions_path(self, **params: object) -> str:
        """The suppression list, with an optional ``channel`` filter and page cursor ``after``."""
        return self._query(f"{self.BASE}/suppressions/", params)

    def suppression_form_path(self, form: str) -> str:
        """Where a suppression list form (``add``, ``remove``, ``import``) posts, or its export (``export.csv``)."""
        return f"{self.BASE}/suppressions/{quote(form, safe='.')}"

    airflow_dag_path = staticmethod(airflow_dag_path)
    airflow_run_path = staticmethod(airflow_run_path)
    airflow_task_path = staticmethod(airflow_task_path)


FAB = PageLinks(FAB_BASE)
UI = PageLinks(UI_BASE)


def ui_path(fab_path: str) -> str:
    """The ``UI`` page that answers a ``FAB`` page's path (``/pluginsv2/campaigns/...``) under another auth manager."""
    rest = fab_path.removeprefix(FAB_PREFIX).removeprefix(ROUTE_BASE)  # Flask sees it without /pluginsv2
    return f"{UI_BASE}{rest if rest not in ('', '/') else '/list'}"
