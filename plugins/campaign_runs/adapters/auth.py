"""Who the user is and what they may do, through Airflow's auth manager (and FAB's user store for emails)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Users who may edit users (Admin by default) may also see and hand over everybody's work list.
WORKLIST_ADMIN_RESOURCE = "Users"


def auth_manager() -> Any:
    """The API server's auth manager."""
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def current_user() -> Any:
    """The user of the current Flask request, as the auth manager sees it."""
    return auth_manager().get_user()


def login_url(next_url: str) -> str:
    """Where to send a user who is not logged in."""
    return str(auth_manager().get_url_login(next_url=next_url))


def may_access_runs(user: Any, method: str, dag_id: str | None = None) -> bool:
    """Whether ``user`` may ``method`` (GET, PUT, POST...) the runs of ``dag_id`` (of any DAG when None)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    details = DagDetails(id=dag_id) if dag_id is not None else None
    return bool(
        auth_manager().is_authorized_dag(method=method, access_entity=DagAccessEntity.RUN, details=details, user=user)
    )


def may_read_task_logs(user: Any, dag_id: str) -> bool:
    """Whether ``user`` may read the task logs of ``dag_id``."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(
        auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.TASK_LOGS, details=DagDetails(id=dag_id), user=user
        )
    )


def authorized_dag_ids(user: Any, method: str = "GET") -> set[str]:
    """The DAG ids ``user`` may ``method``."""
    return set(auth_manager().get_authorized_dag_ids(user=user, method=method))


def is_worklist_admin(user: Any) -> bool:
    """Whether ``user`` may see everyone's work list and reassign entries: who may edit users (Admin)."""
    return bool(
        auth_manager().is_authorized_custom_view(method="PUT", resource_name=WORKLIST_ADMIN_RESOURCE, user=user)
    )


def is_worklist_admin_name(username: str, session: Session) -> bool:
    """``is_worklist_admin`` for a username of FAB's user store, in any process (the CLI too)."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.providers.fab.auth_manager.models import User

    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.is_active:
        return False
    return bool(
        create_auth_manager().is_authorized_custom_view(method="PUT", resource_name=WORKLIST_ADMIN_RESOURCE, user=user)
    )


def user_name(user: Any) -> str:
    """The name the plugin records for ``user``."""
    return str(getattr(user, "username", None) or user.get_name())


def login_from_api_token(security_manager: Any) -> None:
    """Recognise the user of Airflow's API token cookie when the FAB session carries none.

    With ``[fab] session_backend = database`` the ``/pluginsv2`` app cannot read the session of the
    ``/auth`` app that logged the user in, but the JWT cookie Airflow's UI uses reaches it; the user
    it names (validated, not revoked, active) is set for this request only.
    """
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from flask import g, request
    from flask_login import current_user as flask_user

    token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token or not flask_user.is_anonymous:
        return
    try:
        user = asyncio.run(auth_manager().get_user_from_token(token))
        loaded = security_manager.load_user(int(user.get_id()))
    except Exception:
        log.info("The API token cookie does not name a valid user", exc_info=True)
        return
    if loaded is not None and loaded.is_active:
        g._login_user = loaded


def user_email(username: str, session: Session) -> tuple[bool, str | None]:
    """``(exists, email)`` of a user in the FAB user store."""
    from airflow.providers.fab.auth_manager.models import User

    row = session.execute(select(User.email).where(User.username == username)).first()
    if row is None:
        return False, None
    return True, (row[0] or None)
