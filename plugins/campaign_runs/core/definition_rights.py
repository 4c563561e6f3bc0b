"""Who may create and configure campaigns: the "Campaign Definitions" permission, the same on every surface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import auth
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.domain import NotFoundError, NotPermittedError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

VERBS = {"POST": "create campaigns", "PUT": "configure campaigns"}


def refusal(username: str, method: str) -> str:
    """Why ``username`` may not create (POST) or configure (PUT) campaigns."""
    return (
        f"User {username!r} may not {VERBS.get(method, 'manage campaigns')}: that needs the "
        f'"{auth.DEFINITIONS_RESOURCE}" permission (granted to {" and ".join(auth.DEFINITIONS_DEFAULT_ROLES)} '
        "by default); nothing was saved."
    )


@provide_session
def ensure_permissions(*, session: Session = NEW_SESSION) -> None:
    """FAB: create the permission for Admin and Op if it is missing (once per process; a no-op elsewhere)."""
    auth.ensure_definition_permissions(session)


@provide_session
def may_manage(user: Any, method: str, *, session: Session = NEW_SESSION) -> bool:
    """Whether the auth manager's ``user`` may create (POST) or configure (PUT) campaigns."""
    auth.ensure_definition_permissions(session)
    return auth.may_manage_definitions(user, method)


@provide_session
def require_manager(username: str, method: str, *, session: Session = NEW_SESSION) -> None:
    """Refuse (``NotPermittedError``) a user the auth manager knows and who lacks the permission.

    A name the auth manager cannot look up (a manager that lists no users) is taken as given, as the CLI's
    ``--user`` is everywhere else.
    """
    auth.ensure_definition_permissions(session)
    known, user = auth.find_user(username, session)
    if not known:
        raise NotFoundError(auth.unknown_user_message(username))
    if user is not None and not auth.may_manage_definitions(user, method):
        raise NotPermittedError(refusal(username, method))
