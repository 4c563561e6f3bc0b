"""The "Campaign Definitions" permission: FAB grants it to Admin and Op; SimpleAuthManager to OP and ADMIN."""

from __future__ import annotations

from pathlib import Path

import pytest
from campaign_runs.adapters import auth

from tests.support import auth_managers


def _fab_user(username: str):  # type: ignore[no-untyped-def]
    from airflow.providers.fab.auth_manager.models import User
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload

    with create_session() as session:
        user = (
            session.scalars(select(User).options(joinedload(User.roles)).where(User.username == username))
            .unique()
            .one()
        )
        for role in user.roles:
            list(role.permissions)
        session.expunge_all()
        return user


def test_fab_grants_it_to_admin_and_op_and_to_no_one_else(airflow_db: None) -> None:
    from airflow.utils.session import create_session

    with create_session() as session:
        auth.ensure_definition_permissions(session)
        auth._definition_permissions_ready = False
        auth.ensure_definition_permissions(session)  # idempotent: nothing doubled
    decisions = {
        name: (
            auth.may_manage_definitions(_fab_user(name), "POST"),
            auth.may_manage_definitions(_fab_user(name), "PUT"),
        )
        for name in ("admin", "alice", "viewer", "editor")
    }
    assert decisions == {
        "admin": (True, True),
        "alice": (True, True),
        "viewer": (False, False),
        "editor": (False, False),
    }


@pytest.mark.parametrize(("username", "allowed"), [("admin", True), ("alice", False), ("viewer", False)])
def test_simple_auth_manager_needs_op_or_admin(tmp_path: Path, username: str, allowed: bool) -> None:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    with auth_managers.active("simple", tmp_path):
        user = SimpleAuthManagerUser(username=username, role=auth_managers.SIMPLE_USERS[username])
        assert auth.may_manage_definitions(user, "POST") is allowed
