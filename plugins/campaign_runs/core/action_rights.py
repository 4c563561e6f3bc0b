"""Who may act on a campaign and its runs when named, not logged in (the CLI's ``--user``): the pages' and API's rule.

The pages and the API ask the auth manager about the logged-in user; here the auth manager's user of that name is
asked the same questions: Stop, Skip, Pause, Resume, Stop all and Configure need edit rights (PUT) on the
campaign's runs; Restart and Run now also create a run (POST).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from campaign_runs.adapters import auth
from campaign_runs.adapters.session import NEW_SESSION, provide_session
from campaign_runs.domain import NotFoundError, NotPermittedError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

EDIT = ("PUT",)
EDIT_AND_CREATE = ("PUT", "POST")
# action: (what the refusal calls it, the methods on the campaign's runs it needs)
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stop": ("stop runs of", EDIT),
    "skip": ("skip runs of", EDIT),
    "restart": ("restart runs of", EDIT_AND_CREATE),
    "run_now": ("start runs of", EDIT_AND_CREATE),
    "pause": ("pause", EDIT),
    "resume": ("resume", EDIT),
    "stop_all": ("stop the runs of", EDIT),
    "configure": ("configure", EDIT),
}
NEEDS = {EDIT: "edit rights", EDIT_AND_CREATE: "edit and create rights"}


def refusal(username: str, dag_id: str, action: str) -> str:
    """Why ``username`` may not take ``action`` on campaign ``dag_id``."""
    verb, methods = ACTIONS[action]
    return (
        f"User {username!r} may not {verb} campaign {dag_id!r}: that needs {NEEDS[methods]} on the campaign's "
        "runs; nothing was changed."
    )


@provide_session
def require_rights(username: str, dag_id: str, action: str, *, session: Session = NEW_SESSION) -> None:
    """Refuse (``NotPermittedError``) a user the auth manager knows who may not take ``action`` on ``dag_id``.

    An unknown user is ``NotFoundError``; a name the auth manager cannot look up (a manager that lists no users,
    e.g. Keycloak's) is taken as given, as everywhere the CLI names its user.
    """
    _, methods = ACTIONS[action]
    known, user = auth.find_user(username, session)
    if not known:
        raise NotFoundError(auth.unknown_user_message(username))
    if user is None:
        return
    if not all(auth.may_access_runs(user, method, dag_id) for method in methods):
        raise NotPermittedError(refusal(username, dag_id, action))
