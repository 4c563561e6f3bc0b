"""Auth managers the tests run the plugin under: FAB, SimpleAuthManager, and a stand-in for Keycloak.

``EmailAuthManager`` is SimpleAuthManager whose users carry an email address, in the token and in its list
of users, as Keycloak's (and FAB's) users do; Keycloak's server cannot run here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from tests.support.fixtures import PASSWORD

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SIMPLE = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
WITH_EMAIL = "tests.support.auth_managers.EmailAuthManager"
MANAGERS = {"fab": FAB, "simple": SIMPLE, "email": WITH_EMAIL}

# SimpleAuthManager's users (``[core] simple_auth_manager_users``), named as the FAB test users are.
SIMPLE_USERS = {"admin": "admin", "alice": "user", "bob": "user", "viewer": "viewer", "nomail": "user"}
EMAIL_DOMAIN = "idp.example"


def email_of(username: str) -> str:
    """The address the stand-in's users carry (``nomail`` has none)."""
    return "" if username == "nomail" else f"{username}@{EMAIL_DOMAIN}"


class EmailUser(SimpleAuthManagerUser):
    """A SimpleAuthManager user with an email address."""

    def __init__(self, *, username: str, role: str | None, teams: list[str] | None = None, email: str = "") -> None:
        super().__init__(username=username, role=role, teams=teams)
        self.email = email


class EmailAuthManager(SimpleAuthManager):
    """SimpleAuthManager whose users carry an email address (in the JWT and in ``get_users``)."""

    @staticmethod
    def get_users() -> list[SimpleAuthManagerUser]:
        return [
            EmailUser(username=u.username, role=u.role, teams=u.teams, email=email_of(u.username))
            for u in SimpleAuthManager.get_users()
        ]

    def serialize_user(self, user: SimpleAuthManagerUser) -> dict[str, Any]:
        return {**super().serialize_user(user), "email": email_of(user.username)}

    def deserialize_user(self, token: dict[str, Any]) -> EmailUser:
        return EmailUser(username=token["sub"], role=token["role"], teams=token.get("teams"), email=token["email"])


def environment(manager: str, home: Path) -> dict[str, str]:
    """``AIRFLOW__*`` variables that select ``manager`` ("fab", "simple", "email") with the test users."""
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps(dict.fromkeys(SIMPLE_USERS, PASSWORD)))
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": MANAGERS[manager],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in SIMPLE_USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }


@contextmanager
def active(manager: str, home: Path) -> Iterator[dict[str, str]]:
    """Make ``manager`` Airflow's auth manager in this process (and its children); restore the previous one."""
    from airflow.api_fastapi.app import purge_cached_app

    values = environment(manager, home)
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    purge_cached_app()
    try:
        yield values
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        purge_cached_app()
