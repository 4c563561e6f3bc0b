"""The suppression list page, served by the FAB provider under ``/pluginsv2/campaigns/suppressions``.

Work-list administrators (who may edit users) list the addresses no campaign sends to, add and remove them, import
a CSV file and export the list. Every POST carries FAB's CSRF token; every refusal changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Response, flash, make_response, redirect, request
from flask_appbuilder import BaseView, expose
from flask_wtf.csrf import CSRFError

from campaign_runs.adapters import auth
from campaign_runs.domain import CampaignRunsError
from campaign_runs.http_errors import PLAIN_TEXT, http_status, nosniff
from campaign_runs.pages import forms
from campaign_runs.pages.format import fmt_time
from campaign_runs.urls import FAB

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

ROUTE_BASE = "/campaigns/suppressions"
PATH = f"{FAB.BASE}/suppressions/"
CHANNELS = ("email", "sms", "push")
REASONS = ("manual", "unsubscribed", "bounced", "complained", "invalid")
PAGE_SIZE = 100
MAX_IMPORT_BYTES = 5 * 1024 * 1024  # core.suppressions.MAX_IMPORT_BYTES
LIMITS = {"address": 4096, "after": 4200}  # the longest push token; a cursor is a channel and an address
LABELS = {"channel": "The channel", "address": "The address", "reason": "The reason", "after": "The page cursor"}


def suppressions_path(**params: str) -> str:
    """Path of the page, with an optional ``channel`` filter and page cursor ``after``."""
    kept = {key: value for key, value in params.items() if value}
    return f"{PATH}?{urlencode(kept)}" if kept else PATH


def check_request() -> None:
    """Refuse a control character, invalid UTF-8 or an over-long value in the query or a form field (400)."""
    forms.check_query_string(request.query_string)
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    for name, value in pairs:
        forms.check_text("A field name", name)
        label = LABELS.get(name, f"The field {name[:40]!r}")
        forms.check_text(label, value, limit=LIMITS.get(name, forms.FIELD_MAX))


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
        blueprint.register_error_handler(forms.BadInputError, self._bad_input)
        blueprint.register_error_handler(CSRFError, self._bad_input)
        return blueprint

    def _bad_input(self, error: Exception) -> ResponseReturnValue:
        message = getattr(error, "description", None) or str(error)  # a CSRFError's reason is its description
        return self._refuse(message, 400, self._username())

    @staticmethod
    def _username() -> str:
        user = auth.current_user()
        return "" if user is None or getattr(user, "is_anonymous", True) else auth.user_name(user)

    def _admin(self) -> tuple[str, bool] | None:
        """``(username, is_admin)`` of the logged-in user, read before any core call; None when anonymous."""
        auth.login_from_api_token(self.appbuilder.sm)
        user = auth.current_user()
        if user is None or getattr(user, "is_anonymous", True):
            return None
        return auth.user_name(user), auth.is_worklist_admin(user)

    def _page(self, status: int, **context: Any) -> ResponseReturnValue:
        context.setdefault("page", None)
        page = self.render_template(
            "campaign_runs/suppressions.html",
            title="Suppression list",
            links=FAB,
            fmt_time=fmt_time,
            path=suppressions_path,
            channels=CHANNELS,
            reasons=REASONS,
            **context,
        )
        return make_response(page, status)

    def _refuse(self, message: str, status: int, username: str) -> ResponseReturnValue:
        flash(message, "danger")
        return self._page(status, username=username, channel="")

    def _gate(self) -> tuple[str, ResponseReturnValue | None]:
        """``(username, None)`` for an administrator; otherwise the answer (login, 401 or 403)."""
        if not auth.uses_fab():
            text = "This page is served under FAB's auth manager: use `airflow campaigns suppressions` or the REST API."
            return "", (text, 404, {"Content-Type": PLAIN_TEXT})
        if (found := self._admin()) is None:
            if request.method == "GET":
                return "", redirect(auth.login_url(request.url))
            return "", ("Not logged in.", 401, {"Content-Type": PLAIN_TEXT})
        username, admin = found
        if not admin:
            return username, self._refuse(
                "Only work-list administrators may manage the suppression list.", 403, username
            )
        return username, None

    @expose("/")  # type: ignore[untyped-decorator]
    def suppressions(self) -> ResponseReturnValue:
        """A page of entries (``channel`` filter, ``after`` cursor) with the forms that change the list."""
        from campaign_runs.core.suppressions import list_suppressions

        username, refused = self._gate()
        if refused is not None:
            return refused
        channel = request.args.get("channel", "")
        try:
            page = list_suppressions(
                username, channel=channel or None, after=request.args.get("after", ""), limit=PAGE_SIZE
            )
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username)
        return self._page(200, username=username, page=page, channel=channel)

    def _done(self, message: str) -> ResponseReturnValue:
        flash(message, "success")
        return redirect(suppressions_path(channel=request.form.get("back_channel", "")), code=303)

    @expose("/add", methods=["POST"])  # type: ignore[untyped-decorator]
    def add(self) -> ResponseReturnValue:
        """Suppress the posted address on the posted channel."""
        from campaign_runs.core.suppressions import add_suppression

        username, refused = self._gate()
        if refused is not None:
            return refused
        form = request.form
        channel, address = form.get("channel", ""), form.get("address", "")
        try:
            added = add_suppression(username, channel, address, reason=form.get("reason", "manual"), source="page")
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username)
        return self._done(f"{address} {'is now' if added else 'was already'} suppressed on {channel}.")

    @expose("/remove", methods=["POST"])  # type: ignore[untyped-decorator]
    def remove(self) -> ResponseReturnValue:
        """Take the posted address off the posted channel's list."""
        from campaign_runs.core.suppressions import remove_suppression

        username, refused = self._gate()
        if refused is not None:
            return refused
        channel, address = request.form.get("channel", ""), request.form.get("address", "")
        try:
            remove_suppression(username, channel, address)
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username)
        return self._done(f"{address} is off the {channel} suppression list.")

    @expose("/import", methods=["POST"])  # type: ignore[untyped-decorator]
    def import_csv(self) -> ResponseReturnValue:
        """Add every row of the uploaded CSV file, or none."""
        from campaign_runs.core.suppressions import import_suppressions

        username, refused = self._gate()
        if refused is not None:
            return refused
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return self._refuse("Choose a CSV file to import (header channel,address,reason).", 400, username)
        data = upload.stream.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            return self._refuse(f"The file is over {MAX_IMPORT_BYTES} bytes; nothing was imported.", 413, username)
        try:
            added, kept = import_suppressions(username, data, source=f"page import {upload.filename}"[:200])
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username)
        return self._done(f"Imported {upload.filename}: {added} added, {kept} already on the list.")

    @expose("/export.csv")  # type: ignore[untyped-decorator]
    def export_csv(self) -> ResponseReturnValue:
        """The whole list as a CSV download."""
        from campaign_runs.core.suppressions import export_suppressions

        username, refused = self._gate()
        if refused is not None:
            return refused
        try:
            lines = export_suppressions(username)
        except CampaignRunsError as error:
            return self._refuse(str(error), http_status(error), username)
        headers = {"Content-Disposition": 'attachment; filename="suppressions.csv"'}
        return Response(lines, mimetype="text/csv", headers=headers)
