"""What the plugin's own UI routes share (non-FAB auth managers): templates, CSRF, flashes, login.

The same templates as the FAB views, rendered with a Jinja2 environment; the user is the one Airflow's JWT
cookie (``_token``) names, through the auth manager. Every POST form carries a signed double-submit CSRF
token: a random value in a cookie and, in the form, that value and the logged-in user signed with ``[api]
secret_key``, so a token (with its cookie) of one user's session is refused in another's.

The plugin's cookies are ``Secure`` when the request came over https: the scheme uvicorn reports, which follows
a proxy's ``X-Forwarded-Proto`` when ``airflow api-server --proxy-headers`` trusts it.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape

from campaign_runs.pages.format import changes, fmt_duration, fmt_time
from campaign_runs.urls import UI

CSRF_COOKIE = "campaign_runs_csrf"
FLASH_COOKIE = "campaign_runs_flash"
TEMPLATES = Path(__file__).parents[2] / "templates"


def environment() -> Environment:
    """The Jinja2 environment of the UI routes: the FAB views' templates, autoescaped."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    env.globals.update(links=UI, fmt_time=fmt_time, fmt_duration=fmt_duration, changes=changes)
    return env


class Csrf:
    """Signed double-submit tokens: the cookie's random value and the session's user, signed, come back with a POST."""

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeSerializer(secret, salt="campaign-runs-csrf")

    @staticmethod
    def new_cookie_value() -> str:
        """A fresh random value for the CSRF cookie."""
        return secrets.token_urlsafe(24)

    @staticmethod
    def _session(user_id: str) -> str:
        # The token is readable (only signed): it names the user by a hash, not by name.
        return hashlib.sha256(f"campaign-runs-csrf-user:{user_id}".encode()).hexdigest()

    def token(self, cookie_value: str, user_id: str) -> str:
        """The form token of ``cookie_value`` in the session of the user ``user_id``."""
        return str(self._signer.dumps([cookie_value, self._session(user_id)]))

    def valid(self, cookie_value: str | None, token: str | None, user_id: str) -> bool:
        """Whether ``token`` is the signed ``cookie_value`` of ``user_id``'s session."""
        if not cookie_value or not token or not user_id:
            return False
        try:
            return bool(self._signer.loads(token) == [cookie_value, self._session(user_id)])
        except BadSignature:
            return False


class Flashes:
    """One-time messages carried to the next page in a signed cookie (after a redirect)."""

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="campaign-runs-flash")

    def dump(self, messages: list[tuple[str, str]]) -> str:
        """The cookie value of ``messages`` (category, text)."""
        return str(self._signer.dumps(messages))

    def load(self, value: str | None) -> list[tuple[str, str]]:
        """The messages of a cookie value (none when missing, forged or older than ten minutes)."""
        if not value:
            return []
        try:
            loaded: Any = self._signer.loads(value, max_age=600)
        except BadSignature:
            return []
        return [(str(c), str(m)) for c, m in loaded] if isinstance(loaded, list) else []
