"""The suppression list page, served by the FAB provider under ``/pluginsv2/campaigns/suppressions``.

What it shows and does is ``pages.suppressions``' (the plugin's own host serves the same,
``pages.asgi.suppressions``; under another auth manager this page's URLs lead there, ``fab.campaigns._elsewhere``).
This view checks the login, translates Flask's request and response, and maps a
refusal (a ``CampaignRunsError``, a bad CSRF token) to the error page in one place. Every POST carries FAB's CSRF
token; every refusal changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Response, flash, make_response, redirect, request
from flask_appbuilder import BaseView, expose
from flask_wtf.csrf import CSRFError

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages import forms, suppressions
from campaign_runs.pages.builders import PageView, Redirect
from campaign_runs.pages.fab.access import FAB_ACCESS, logged_in
from campaign_runs.pages.format import fmt_time
from campaign_runs.urls import FAB

if TYPE_CHECKING:
    from collections.abc import Iterator

    from flask.typing import ResponseReturnValue

ROUTE_BASE = "/campaigns/suppressions"


def check_request() -> None:
    """Refuse a control character, invalid UTF-8 or an over-long value in the query or a form field (400)."""
    forms.check_query_string(request.query_string)
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    suppressions.check_fields(pairs)


def _upload() -> suppressions.Upload | None:
    """The posted file, read up to one byte over the limit."""
    upload = request.files.get("file")
    if upload is None:
        return None
    return suppressions.Upload(upload.filename or "", upload.stream.read(suppressions.MAX_IMPORT_BYTES + 1))


class CampaignSuppressionsView(BaseView):  # type: ignore[misc]  # FAB ships no type hints
    """The suppression list: list by channel, add, remove, import CSV, export CSV (administrators only)."""

    route_base = ROUTE_BASE
    default_view = "suppressions"
    template_folder = str(Path(__file__).parents[2] / "templates")

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Any:
        """FAB's blueprint of the page, guarded; every answer carries ``nosniff``."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        blueprint.before_request(check_request)
        blueprint.after_request(nosniff)
        blueprint.register_error_handler(CampaignRunsError, self._refused)
        blueprint.register_error_handler(CSRFError, self._refused)
        return blueprint

    def _refused(self, error: Exception) -> ResponseReturnValue:
        """The one answer to a refusal: a bad field or token (400), a refused user (403)."""
        message = getattr(error, "description", None) or str(error)  # a CSRFError's reason is its description
        status = http_status(error) if isinstance(error, CampaignRunsError) else 400
        return self._answer(PageView("error.html", {"title": suppressions.TITLE}, status, (("danger", message),)))

    def _answer(self, result: PageView | Redirect) -> ResponseReturnValue:
        """Render what the page code chose (its messages flashed), or redirect with them for the next page."""
        for category, message in result.flashes:
            flash(message, category)
        if isinstance(result, Redirect):
            return redirect(result.location, code=303)
        page = self.render_template(
            f"campaign_runs/{result.template}",
            links=FAB,
            fmt_time=fmt_time,
            username=FAB_ACCESS.username,
            **result.context,
        )
        return make_response(page, result.status)

    def _gate(self) -> ResponseReturnValue | None:
        """None for a logged-in user (the page code asks whether they administer); otherwise the answer."""
        auth.login_from_api_token(self.appbuilder.sm)
        if not logged_in():
            if request.method == "GET":
                return redirect(auth.login_url(request.url))
            return "Not logged in.", 401, {"Content-Type": PLAIN_TEXT}
        FAB_ACCESS.username, FAB_ACCESS.is_admin()  # read before any core call detaches the user object
        return None

    @expose("/")  # type: ignore[untyped-decorator]
    def suppressions(self) -> ResponseReturnValue:
        """A page of entries (``channel`` filter, ``after`` cursor) with the forms that change the list."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(suppressions.list_page(FAB_ACCESS, request.args))

    @expose("/add", methods=["POST"])  # type: ignore[untyped-decorator]
    def add(self) -> ResponseReturnValue:
        """Suppress the posted address on the posted channel."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(suppressions.add(FAB_ACCESS, FAB, request.form))

    @expose("/remove", methods=["POST"])  # type: ignore[untyped-decorator]
    def remove(self) -> ResponseReturnValue:
        """Take the posted address off the posted channel's list."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(suppressions.remove(FAB_ACCESS, FAB, request.form))

    @expose("/import", methods=["POST"])  # type: ignore[untyped-decorator]
    def import_csv(self) -> ResponseReturnValue:
        """Add every row of the uploaded CSV file, or none."""
        if (refused := self._gate()) is not None:
            return refused
        return self._answer(suppressions.import_csv(FAB_ACCESS, FAB, request.form, _upload()))

    @expose("/export.csv")  # type: ignore[untyped-decorator]
    def export_csv(self) -> ResponseReturnValue:
        """The whole list as a CSV download."""
        if (refused := self._gate()) is not None:
            return refused
        lines: Iterator[str] | PageView = suppressions.export_csv(FAB_ACCESS)
        if isinstance(lines, PageView):
            return self._answer(lines)
        return Response(lines, mimetype="text/csv", headers=suppressions.EXPORT_HEADERS)
