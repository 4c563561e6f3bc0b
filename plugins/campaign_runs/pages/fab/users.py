"""The "My email" form of the FAB work list, served by the FAB provider under ``/pluginsv2/campaigns/worklist/email``.

The address a user gets the plugin's emails at when the auth manager's user carries none (the second link of
the chain in ``adapters.auth``). The work list (``fab.campaigns``) shows the form; FAB's CSRF protection guards it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import flash, make_response, redirect, request
from flask_appbuilder import BaseView, expose

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages.format import fmt_time
from campaign_runs.settings import get_settings
from campaign_runs.urls import FAB, ui_path

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

ROUTE_BASE = "/campaigns/worklist"
EMAIL_PATH = f"{FAB.BASE}/worklist/email"


def my_email_context(username: str) -> dict[str, Any]:
    """What the work-list page shows of ``username``'s address, and where its My email form posts."""
    from campaign_runs.core.users import email_of, no_email_notice

    found = email_of(username)
    return {"my_email": found, "my_email_notice": no_email_notice(found), "my_email_action": EMAIL_PATH}


class CampaignUsersView(BaseView):  # type: ignore[misc]  # FAB ships no type hints
    """My email: set (or clear) the address the plugin's emails go to."""

    route_base = ROUTE_BASE
    default_view = "email"
    template_folder = str(Path(__file__).parents[2] / "templates")

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint of My email; every answer carries ``nosniff``."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.after_request(nosniff)
        return blueprint

    def _refuse(self, message: str, status: int, username: str) -> ResponseReturnValue:
        flash(message, "danger")
        page = self.render_template(
            "campaign_runs/error.html",
            title="My work list",
            links=FAB,
            fmt_time=fmt_time,
            username=username,
            note_max_length=get_settings().note_max_length,
            note_required=get_settings().note_required,
        )
        return make_response(page, status)

    @expose("/email", methods=["POST"])  # type: ignore[untyped-decorator]
    def email(self) -> ResponseReturnValue:
        """Save the posted address (empty: clear it); back to the work list with where emails now go."""
        from campaign_runs.core.users import no_email_notice, set_email

        if not auth.uses_fab():  # another auth manager: the plugin's own pages serve its users
            return redirect(ui_path(FAB.worklist_path()), code=303)
        auth.login_from_api_token(self.appbuilder.sm)
        user = auth.current_user()
        if user is None or getattr(user, "is_anonymous", True):
            return "Not logged in.", 401, {"Content-Type": PLAIN_TEXT}
        username = auth.user_name(user)  # read before a core call detaches the user object
        try:
            found = set_email(username, request.form.get("email", ""))
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username)
        flash(f"Your emails go to {found.address}." if found.address else (no_email_notice(found) or ""), "success")
        return redirect(FAB.worklist_path(), code=303)
