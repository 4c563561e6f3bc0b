"""Who the user is and what they may do, through Airflow's auth manager, and where their email goes.

Identity is the auth manager's: the user object Airflow's API and UI get from the JWT (``get_name()`` is the
name the plugin records). Where a name must be checked without such an object (the CLI's ``--user``, a
reassign target, the scheduler's emails), a ``UserDirectory`` asks the active auth manager: FAB's user
store, SimpleAuthManager's configured users (``[core] simple_auth_manager_users``); any other manager
(Keycloak) cannot list users, so a name is taken as given.

A user's email address, first that resolves (``resolve_email``):

1. the auth manager's user, when it carries one (FAB; Keycloak: the acting user, remembered for later);
2. the address the user set in Campaign Runs (``campaign_user_email.email``);
3. ``[campaign_runs] user_email_template`` with ``{username}`` replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from campaign_runs.domain import utcnow
from campaign_runs.settings import get_settings
from campaign_runs.tables import permission_grant as permission_grant_table
from campaign_runs.tables import user_email as user_email_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Users who may edit users (Admin by default) may also see and hand over everybody's work list.
WORKLIST_ADMIN_RESOURCE = "Users"
DEFINITIONS_RESOURCE = "Campaign Definitions"
DEFINITIONS_DEFAULT_ROLES = ("Admin", "Op")
DEFINITIONS_ACTIONS = ("can_read", "can_create", "can_edit")
_definition_permissions_ready = False
FAB_AUTH_MANAGER = "FabAuthManager"

# The auth manager's user object of the request being served (API and UI routes), for the core's lookups.
_acting: ContextVar[Any] = ContextVar("campaign_runs_acting_user", default=None)


def auth_manager() -> Any:
    """The API server's auth manager (created from the configuration in other processes, e.g. the CLI)."""
    from airflow.api_fastapi.app import create_auth_manager, get_auth_manager

    try:
        return get_auth_manager()
    except RuntimeError:
        return create_auth_manager()


def auth_manager_class() -> type:
    """The configured auth manager's class (``[core] auth_manager``)."""
    from airflow.api_fastapi.app import get_auth_manager_cls

    return get_auth_manager_cls()


def auth_manager_name() -> str:
    """The configured auth manager's class name, as people know it (``SimpleAuthManager``)."""
    return auth_manager_class().__name__


def uses_fab() -> bool:
    """Whether the configured auth manager is FAB's (or a subclass of it)."""
    return any(klass.__name__ == FAB_AUTH_MANAGER for klass in auth_manager_class().__mro__)


def current_user() -> Any:
    """The user of the current Flask request, as the auth manager sees it."""
    return auth_manager().get_user()


def login_url(next_url: str) -> str:
    """Where to send a user who is not logged in."""
    return str(auth_manager().get_url_login(next_url=next_url))


def user_from_token(token: str) -> Any:
    """The user a JWT (Airflow's ``_token`` cookie) names, or None when it is not valid."""
    try:
        return asyncio.run(auth_manager().get_user_from_token(token))
    except Exception:
        log.info("The API token does not name a valid user", exc_info=True)
        return None


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
    """Whether ``user`` may see everyone's work list and reassign entries: who may edit users (Admin).

    Managers other than FAB answer custom views coarsely (SimpleAuthManager lets every viewer through), so
    there the user must also be allowed to change the configuration (SimpleAuthManager: OP and ADMIN).
    """
    manager = auth_manager()
    if not manager.is_authorized_custom_view(method="PUT", resource_name=WORKLIST_ADMIN_RESOURCE, user=user):
        return False
    return uses_fab() or bool(manager.is_authorized_configuration(method="PUT", user=user))


def _definition_permissions(session: Session) -> list[Any]:
    """FAB's "Campaign Definitions" permissions (``can_read``, ``can_create``, ``can_edit``), created if missing."""
    from airflow.providers.fab.auth_manager.models import Action, Permission, Resource

    resource = session.scalars(select(Resource).where(Resource.name == DEFINITIONS_RESOURCE)).first()
    if resource is None:
        resource = Resource(name=DEFINITIONS_RESOURCE)
        session.add(resource)
    permissions = []
    for action_name in DEFINITIONS_ACTIONS:
        action = session.scalars(select(Action).where(Action.name == action_name)).first()
        if action is None:
            action = Action(name=action_name)
            session.add(action)
        session.flush()
        permission = session.scalars(
            select(Permission).where(Permission.action_id == action.id, Permission.resource_id == resource.id)
        ).first()
        if permission is None:
            permission = Permission(action=action, resource=resource)
            session.add(permission)
        permissions.append(permission)
    return permissions


def ensure_definition_permissions(session: Session) -> None:
    """FAB only: create the "Campaign Definitions" permissions if missing; grant them to Admin and Op once.

    The permissions are created whenever they are missing, but each default role is granted them only once
    (recorded in ``campaign_permission_grant``): a role an administrator took them from does not get them back.
    A default role that does not exist yet is granted them when it first does.
    """
    global _definition_permissions_ready
    if _definition_permissions_ready or not uses_fab():
        return
    from airflow.providers.fab.auth_manager.models import Role

    permissions = _definition_permissions(session)
    granted = set(
        session.scalars(
            select(permission_grant_table.c.role).where(permission_grant_table.c.resource == DEFINITIONS_RESOURCE)
        )
    )
    roles = list(session.scalars(select(Role).where(Role.name.in_(DEFINITIONS_DEFAULT_ROLES))).unique())
    for role in roles:
        if role.name in granted:
            continue
        for permission in permissions:
            if permission not in role.permissions:
                role.permissions.append(permission)
        session.execute(
            insert(permission_grant_table).values(resource=DEFINITIONS_RESOURCE, role=role.name, granted_at=utcnow())
        )
    try:
        session.commit()
    except IntegrityError:  # another process (an API server worker) did the same at the same moment
        session.rollback()
        return
    # A default role created later (FAB creates them when the API server first starts) is granted at a later start.
    _definition_permissions_ready = len(roles) == len(DEFINITIONS_DEFAULT_ROLES)


def may_manage_definitions(user: Any, method: str = "POST") -> bool:
    """Whether ``user`` may create (POST) or configure (PUT) campaigns: the "Campaign Definitions" custom view.

    FAB grants it to Admin and Op (``ensure_definition_permissions``) and any role it is given to. Managers that
    answer custom views coarsely (SimpleAuthManager lets every viewer through) also need the right to change
    the configuration (SimpleAuthManager: OP and ADMIN), as the work-list administrators do.
    """
    manager = auth_manager()
    if not manager.is_authorized_custom_view(method=method, resource_name=DEFINITIONS_RESOURCE, user=user):
        return False
    return uses_fab() or bool(manager.is_authorized_configuration(method="PUT", user=user))


def user_name(user: Any) -> str:
    """The name the plugin records for ``user`` (work lists, history, emails are keyed by it)."""
    return str(getattr(user, "username", None) or user.get_name())


@contextmanager
def acting_as(user: Any) -> Iterator[str]:
    """Within the block, the core knows ``user`` (the auth manager's object) by name; yields that name."""
    token = _acting.set(user)
    try:
        yield user_name(user)
    finally:
        _acting.reset(token)


# ---------------------------------------------------------------- user directories


class UserDirectory:
    """Users of an auth manager that cannot list them: every name is taken as given."""

    lists_users = False

    def find(self, username: str, session: Session) -> Any:
        """The auth manager's user called ``username``, or None."""
        return None

    def unknown(self, username: str) -> str:
        """Why ``username`` is refused."""
        return f"User {username!r} does not exist."


class FabUserDirectory(UserDirectory):
    """FAB's user store."""

    lists_users = True

    def find(self, username: str, session: Session) -> Any:
        from airflow.providers.fab.auth_manager.models import User

        user = session.scalars(select(User).where(User.username == username)).first()
        return user if user is not None and user.is_active else None


class SimpleUserDirectory(UserDirectory):
    """SimpleAuthManager's users: ``[core] simple_auth_manager_users``."""

    lists_users = True

    def __init__(self, manager_class: Any) -> None:
        self.manager_class = manager_class

    def find(self, username: str, session: Session) -> Any:
        return next((u for u in self.manager_class.get_users() if u.username == username), None)

    def unknown(self, username: str) -> str:
        names = ", ".join(sorted(u.username for u in self.manager_class.get_users())) or "none"
        return (
            f"User {username!r} does not exist: {self.manager_class.__name__} knows only the users of "
            f"[core] simple_auth_manager_users ({names})."
        )


def directory() -> UserDirectory:
    """The user directory of the configured auth manager."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    klass = auth_manager_class()
    if uses_fab():
        return FabUserDirectory()
    if issubclass(klass, SimpleAuthManager):
        return SimpleUserDirectory(klass)
    return UserDirectory()


def find_user(username: str, session: Session) -> tuple[bool, Any]:
    """``(known, user)``: the acting user, or the directory's; unknown only where the directory can tell."""
    acting = _acting.get()
    if acting is not None and user_name(acting) == username:
        return True, acting
    users = directory()
    user = users.find(username, session)
    return (user is not None or not users.lists_users), user


def unknown_user_message(username: str) -> str:
    """Why ``username`` is refused, naming where the auth manager keeps its users."""
    return directory().unknown(username)


def is_worklist_admin_name(username: str, session: Session) -> bool:
    """``is_worklist_admin`` for a user name, in any process (the CLI too): False when it names no user."""
    _, user = find_user(username, session)
    return user is not None and is_worklist_admin(user)


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


# ---------------------------------------------------------------- email addresses


@dataclass(frozen=True)
class EmailResolution:
    """Where a user's email goes: the address and the link of the chain that gave it, or why there is none."""

    username: str
    known: bool
    address: str | None
    source: str | None  # "auth_manager", "campaign_runs", "template"
    reason: str | None


def _auth_manager_email(user: Any) -> str | None:
    try:
        return str(getattr(user, "email", None) or "").strip() or None
    except Exception:  # a FAB user object detached from its session
        return None


def _stored(username: str, session: Session) -> Any:
    return session.execute(select(user_email_table).where(user_email_table.c.username == username)).first()


def resolve_email(username: str, session: Session) -> EmailResolution:
    """The user's address by the documented chain: auth manager, set in Campaign Runs, template."""
    known, user = find_user(username, session)
    stored = _stored(username, session)
    chain = (
        ("auth_manager", _auth_manager_email(user) or (stored.auth_manager_email if stored is not None else None)),
        ("campaign_runs", stored.email if stored is not None else None),
        ("template", get_settings().user_email_template.replace("{username}", username) or None),
    )
    for source, address in chain:
        if address:
            return EmailResolution(username, known, address, source, None)
    reason = f"User {username!r} has no email address." if known else unknown_user_message(username)
    return EmailResolution(username, known, None, None, reason)


def user_email(username: str, session: Session) -> tuple[bool, str | None]:
    """``(known, email)`` of a user, by ``resolve_email``'s chain."""
    found = resolve_email(username, session)
    return found.known, found.address


def _save(session: Session, username: str, values: dict[str, Any]) -> None:
    """Insert or update the user's row in ``campaign_user_email`` (the caller's transaction)."""
    values = {**values, "updated_at": utcnow()}
    if _stored(username, session) is None:
        session.execute(insert(user_email_table).values(username=username, **values))
    else:
        session.execute(update(user_email_table).where(user_email_table.c.username == username).values(**values))


def remember_acting_email(username: str, session: Session) -> None:
    """Keep the address the acting user's object carries, for processes that cannot ask the auth manager."""
    acting = _acting.get()
    if acting is None or user_name(acting) != username or directory().lists_users:
        return
    address = _auth_manager_email(acting)
    stored = _stored(username, session)
    if address and (stored is None or stored.auth_manager_email != address):
        _save(session, username, {"auth_manager_email": address})


def set_user_email(username: str, address: str | None, session: Session) -> None:
    """Set (or, with None, clear) the address ``username`` set in Campaign Runs."""
    _save(session, username, {"email": address})
