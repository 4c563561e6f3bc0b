"""What every FAB page shares with Flask: the request check before any core call, and the poll answer."""

from __future__ import annotations

from typing import Any

from flask import Request, Response, current_app, jsonify

from campaign_runs.pages import forms


def _check_raw_form(request: Request) -> None:
    """Refuse a URL-encoded form body that is not UTF-8 once percent-decoded."""
    # Werkzeug keeps an undecodable %XX of such a form as text, so the body is read again; possible when the
    # server passes it as a seekable stream, as the API server's WSGI bridge does. Multipart fields decode to
    # U+FFFD, refused with the fields.
    stream = request.environ.get("wsgi.input")
    seekable = getattr(stream, "seekable", None)
    if stream is None or seekable is None or not seekable() or request.mimetype != "application/x-www-form-urlencoded":
        return
    position = stream.tell()
    stream.seek(0)
    raw = stream.read()
    stream.seek(position)
    forms.check_utf8("The form", raw)


def check_request(request: Request) -> None:
    """Refuse a bad path segment, query string, query parameter or form field of a campaign page."""
    forms.check_query_string(request.query_string)
    forms.check_pairs(((name, str(value)) for name, value in (request.view_args or {}).items()), "path segment")
    forms.check_pairs(request.args.items(multi=True), "query parameter")
    if request.method == "POST":
        forms.check_pairs(request.form.items(multi=True), "field")
        _check_raw_form(request)


class PollResponse(Response):
    """A polled JSON response that never rewrites the (permanent) session cookie: a poll crossing an action
    would put back the session it read, dropping the action's flash and one-time value."""

    def set_cookie(self, key: str, *args: Any, **kwargs: Any) -> None:
        if key != current_app.config["SESSION_COOKIE_NAME"]:
            super().set_cookie(key, *args, **kwargs)

    def delete_cookie(self, key: str, *args: Any, **kwargs: Any) -> None:
        if key != current_app.config["SESSION_COOKIE_NAME"]:
            super().delete_cookie(key, *args, **kwargs)


def poll(data: dict[str, Any], status: int = 200) -> Response:
    """``data`` as the JSON answer of a poll, with the session cookie left alone."""
    response = jsonify(data)
    response.__class__ = PollResponse
    response.status_code = status
    return response
