"""Who may use which page, for both hosts: one rule, ``core.action_rights.ACTIONS``, asked through the host.

Each host only says whether its logged-in user may take a method (GET, PUT, POST) on the runs of a DAG
(``Visitor.may``) and whether they hold the "Campaign Definitions" permission (``Visitor.may_manage``).
"""

from __future__ import annotations

from typing import Protocol

from campaign_runs.core.action_rights import ACTIONS
from campaign_runs.core.campaign_actions import CAMPAIGN_ACTIONS
from campaign_runs.domain import NotPermittedError

CREATE, CONFIGURE = "POST", "PUT"  # the Campaign Definitions permission's methods


class RunsAccess(Protocol):
    """What the host answers about the logged-in user's rights on a DAG's runs."""

    def may(self, dag_id: str | None, method: str) -> bool:
        """Whether the user may ``method`` (GET, PUT, POST) the runs of ``dag_id``."""


class Visitor(RunsAccess, Protocol):
    """The logged-in user of a page, as the host's auth manager answers for them."""

    @property
    def username(self) -> str:
        """The name the plugin records the user by."""

    def may_manage(self, method: str) -> bool:
        """Whether the user may create (POST) or configure (PUT) campaigns: the Campaign Definitions permission."""


def may_take(visitor: RunsAccess, action: str, dag_id: str) -> bool:
    """Whether ``visitor`` may take ``action`` (a key of ``ACTIONS``: stop, restart, run_now, configure...)."""
    _, methods = ACTIONS[action]
    return all(visitor.may(dag_id, method) for method in methods)


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


def require_action(visitor: RunsAccess, action: str, dag_id: str, label: str) -> None:
    """Refuse (403) a user who may not take ``action`` on ``dag_id``; ``label`` names it in the message."""
    if not may_take(visitor, action, dag_id):
        raise NotPermittedError(f"You may not {label} campaign {dag_id}.")
