"""Who may use which page, for both hosts: one rule, ``core.action_rights.ACTIONS``, asked through the host.

Each host only says whether its logged-in user may take a method (GET, PUT, POST) on the runs of a DAG
(``Visitor.may``), which DAG ids they may read or edit at all (``ListedAccess.authorized_dag_ids``, for lists),
whether they hold the "Campaign Definitions" permission (``Visitor.may_manage``) and whether they administer the
work lists (``Visitor.is_admin``: everyone's entries, the suppression list).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from campaign_runs.core.action_rights import ACTIONS
from campaign_runs.core.campaign_actions import CAMPAIGN_ACTIONS
from campaign_runs.domain import NotPermittedError

CREATE, CONFIGURE = "POST", "PUT"  # the Campaign Definitions permission's methods


class RunsAccess(Protocol):
    """What the host answers about the logged-in user's rights on a DAG's runs."""

    def may(self, dag_id: str | None, method: str) -> bool:
        """Whether the user may ``method`` (GET, PUT, POST) the runs of ``dag_id``."""


class ListedAccess(RunsAccess, Protocol):
    """A host that also answers, in one call, every DAG id its user may read (GET) or edit (PUT)."""

    def authorized_dag_ids(self, method: str) -> set[str]:
        """The DAG ids the user may ``method``."""


class Visitor(RunsAccess, Protocol):
    """The logged-in user of a page, as the host's auth manager answers for them."""

    @property
    def username(self) -> str:
        """The name the plugin records the user by."""

    def may_manage(self, method: str) -> bool:
        """Whether the user may create (POST) or configure (PUT) campaigns: the Campaign Definitions permission."""

    def is_admin(self) -> bool:
        """Whether the user administers the work lists: everyone's entries and the suppression list."""


def may_take(visitor: RunsAccess, action: str, dag_id: str) -> bool:
    """Whether ``visitor`` may take ``action`` (a key of ``ACTIONS``: stop, restart, run_now, configure...)."""
    _, methods = ACTIONS[action]
    return all(visitor.may(dag_id, method) for method in methods)


def takeable(visitor: ListedAccess, action: str, dag_ids: Iterable[str]) -> set[str]:
    """Those of ``dag_ids`` on which ``visitor`` may take ``action``: ``may_take`` asked once a method, not a DAG.

    Airflow's auth managers grant a method on a DAG's runs to who may take it on runs at all and may read (GET)
    or edit (any other method) that DAG (``is_authorized_dag`` with ``DagAccessEntity.RUN``); both asked in bulk.
    """
    _, methods = ACTIONS[action]
    allowed = set(dag_ids)
    for method in methods:
        if not allowed:
            break
        dag_method = "GET" if method == "GET" else "PUT"
        allowed &= visitor.authorized_dag_ids(dag_method) if visitor.may(None, method) else set()
    return allowed


def row_rights(visitor: ListedAccess, dag_ids: Iterable[str]) -> dict[str, dict[str, bool]]:
    """A list's row actions by campaign: ``may_act`` (Stop, Skip) and ``may_restart``, asked once a method."""
    listed = set(dag_ids)
    acting, restarting = takeable(visitor, "stop", listed), takeable(visitor, "restart", listed)
    return {
        "may_act": {dag_id: dag_id in acting for dag_id in listed},
        "may_restart": {dag_id: dag_id in restarting for dag_id in listed},
    }


def may_configure(visitor: Visitor, dag_id: str) -> bool:
    """Configure needs the Campaign Definitions permission and edit rights on the campaign's runs."""
    return visitor.may_manage(CONFIGURE) and may_take(visitor, "configure", dag_id)


def campaign_rights(visitor: Visitor, dag_id: str) -> dict[str, bool]:
    """What the campaign display offers: Configure and each campaign action (asked before any core call)."""
    rights = {action: may_take(visitor, action, dag_id) for action in CAMPAIGN_ACTIONS}
    return {**rights, "configure": may_configure(visitor, dag_id)}


def require_create(visitor: Visitor) -> None:
    """Refuse (403) a user who may not create campaigns."""
    if not visitor.may_manage(CREATE):
        raise NotPermittedError("You may not create campaigns (the Campaign Definitions permission).")


def require_configure(visitor: Visitor, dag_id: str) -> None:
    """Refuse (403) a user who may not configure campaign ``dag_id``."""
    if not visitor.may_manage(CONFIGURE):
        raise NotPermittedError("You may not configure campaigns (the Campaign Definitions permission).")
    if not may_take(visitor, "configure", dag_id):
        raise NotPermittedError(f"You may not change campaign {dag_id}.")


def require_admin(visitor: Visitor) -> None:
    """Refuse (403) a user who does not administer the work lists (the suppression list is theirs)."""
    if not visitor.is_admin():
        raise NotPermittedError("Only work-list administrators may manage the suppression list.")


def require_action(visitor: RunsAccess, action: str, dag_id: str, label: str) -> None:
    """Refuse (403) a user who may not take ``action`` on ``dag_id``; ``label`` names it in the message."""
    if not may_take(visitor, action, dag_id):
        raise NotPermittedError(f"You may not {label} campaign {dag_id}.")
