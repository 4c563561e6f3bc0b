"""The logged-in FAB user's rights, as the page code asks for them (``pages.rights.Visitor``), asked once a request.

Auth decisions are taken once per request and before any core call: the core's sessions are Airflow's scoped
session, whose rollback or close detaches the logged-in user object.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import g

from campaign_runs.adapters import auth
from campaign_runs.core import definition_rights

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)


def memo(key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, once per request."""
    cached = g.setdefault("campaign_runs_auth", {})
    if key not in cached:
        cached[key] = compute()
    return cached[key]


def logged_in() -> bool:
    """Whether a user (not the anonymous one) is logged in."""

    def compute() -> bool:
        user = auth.current_user()
        return bool(user is not None and not getattr(user, "is_anonymous", True))

    return bool(memo("logged_in", compute))


def ensure_permissions() -> None:
    """Create the "Campaign Definitions" permission for Admin and Op if it is missing (once per process)."""
    try:
        definition_rights.ensure_permissions()
    except Exception:  # the metadata DB may not be ready (db migrate): tried again before each check
        log.warning("Could not create the Campaign Definitions permission yet", exc_info=True)


class FabAccess:
    """The logged-in FAB user: name and rights (memoised per request)."""

    @property
    def username(self) -> str:
        """The logged-in user's name ("" when nobody is)."""
        return str(memo("username", lambda: auth.user_name(auth.current_user()) if logged_in() else ""))

    def may(self, dag_id: str | None, method: str) -> bool:
        """Whether the user may ``method`` the runs of ``dag_id``."""
        key = f"runs:{method}:{dag_id}"
        return bool(memo(key, lambda: auth.may_access_runs(auth.current_user(), method, dag_id)))

    def may_manage(self, method: str) -> bool:
        """Whether the user may create (POST) or configure (PUT) campaigns."""
        key = f"definitions:{method}"
        return bool(memo(key, lambda: definition_rights.may_manage(auth.current_user(), method)))

    def may_read_logs(self, dag_id: str) -> bool:
        """Whether the user may read the task logs of ``dag_id``."""
        return bool(memo(f"logs:{dag_id}", lambda: auth.may_read_task_logs(auth.current_user(), dag_id)))

    def authorized_dag_ids(self, method: str) -> set[str]:
        """The DAG ids the user may ``method``."""
        return set(memo(f"dag_ids:{method}", lambda: auth.authorized_dag_ids(auth.current_user(), method)))

    def is_admin(self) -> bool:
        """Whether the user administers the work lists."""
        return bool(memo("admin", lambda: auth.is_worklist_admin(auth.current_user())))


FAB_ACCESS = FabAccess()
