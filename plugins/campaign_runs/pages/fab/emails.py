"""The email outbox page, served by the FAB provider under ``/pluginsv2/campaigns/emails``.

Lists emails (the failed ones first in mind: filter by status, campaign, run) and lets an administrator
(who may edit users) resend a failed or undeliverable one with a CSRF-protected POST.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import flash, make_response, redirect, request
from flask_appbuilder import BaseView, expose

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages.format import fmt_time
from campaign_runs.urls import FAB, ui_path

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

ROUTE_BASE = "/campaigns/emails"
PATH = f"{FAB.BASE}/emails/"
STATUSES = ("pending", "sent", "failed", "undeliverable")
FILTERS = ("status", "dag_id", "run_id")


def emails_path(**params: str) -> str:
    """Path of the outbox page with optional filters (status, dag_id, run_id)."""
    kept = {key: value for key, value in params.items() if value}
    return f"{PATH}?{urlencode(kept)}" if kept else PATH


class CampaignEmailsView(BaseView):  # type: ignore[misc]  # FAB ships no type hints
    """The outbox: emails with status, recipient, attempts and last error; Resend for administrators."""

    route_base = ROUTE_BASE
    default_view = "emails"
    template_folder = str(Path(__file__).parents[2] / "templates")

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint of the outbox; every answer carries ``nosniff``."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.after_request(nosniff)
        return blueprint

    def _user(self) -> tuple[str, bool] | None:
        """``(username, is_admin)`` of the logged-in user, read before any core call; None when anonymous."""
        auth.login_from_api_token(self.appbuilder.sm)
        user = auth.current_user()
        if user is None or getattr(user, "is_anonymous", True):
            return None
        return auth.user_name(user), auth.is_worklist_admin(user)

    def _page(self, status: int, **context: Any) -> ResponseReturnValue:
        page = self.render_template(
            "campaign_runs/emails.html", title="Emails", links=FAB, fmt_time=fmt_time, **context
        )
        return make_response(page, status)

    @expose("/")  # type: ignore[untyped-decorator]
    def emails(self) -> ResponseReturnValue:
        """Emails, newest first, filtered by ``status``, ``dag_id`` and ``run_id``."""
        from campaign_runs.core.emails import list_emails

        if not auth.uses_fab():  # another auth manager: the plugin's own pages serve its users
            return redirect(ui_path(request.full_path.rstrip("?")))
        if (user := self._user()) is None:
            return redirect(auth.login_url(request.url))
        username, admin = user
        filters = {name: request.args.get(name, "").strip()[:250] for name in FILTERS}
        readable = auth.authorized_dag_ids(auth.current_user(), "GET")
        found = list_emails(status=filters["status"] or None, dag_id=filters["dag_id"] or None, limit=500)
        shown = [e for e in found if e.dag_id in readable and (not filters["run_id"] or e.run_id == filters["run_id"])]
        return self._page(
            200, emails=shown, filters=filters, statuses=STATUSES, admin=admin, username=username, path=emails_path
        )

    def _refuse(self, message: str, status: int, username: str, admin: bool) -> ResponseReturnValue:
        flash(message, "danger")
        return self._page(
            status, emails=[], filters={}, statuses=STATUSES, admin=admin, username=username, path=emails_path
        )

    @expose("/<int:outbox_id>/resend", methods=["POST"])  # type: ignore[untyped-decorator]
    def resend(self, outbox_id: int) -> ResponseReturnValue:
        """Resend a failed or undeliverable email (administrators only); back to the filtered list."""
        from campaign_runs.core.emails import resend_email

        if (user := self._user()) is None:
            return "Not logged in.", 401, {"Content-Type": PLAIN_TEXT}
        username, admin = user
        if not admin:
            return self._refuse("Only administrators may resend emails.", 403, username, admin)
        try:
            email = resend_email(outbox_id, username)
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username, admin)
        flash(f"Email {email.id} to {email.recipient} is pending again and on its way.", "success")
        return redirect(emails_path(**{name: request.form.get(name, "")[:250] for name in FILTERS}), code=303)
