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


ALL_ACTIONS = {"can_read", "can_create", "can_edit"}


def _definition_permissions(role_name: str) -> set[str]:
    """The "Campaign Definitions" actions ``role_name`` holds."""
    from airflow.providers.fab.auth_manager.models import Role
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        role = session.scalars(select(Role).where(Role.name == role_name)).unique().one()
        return {p.action.name for p in role.permissions if p.resource.name == auth.DEFINITIONS_RESOURCE}


def _revoke(role_name: str) -> None:
    from airflow.providers.fab.auth_manager.models import Role
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        role = session.scalars(select(Role).where(Role.name == role_name)).unique().one()
        role.permissions = [p for p in role.permissions if p.resource.name != auth.DEFINITIONS_RESOURCE]


def _fresh_database() -> None:
    """As before the plugin's first start: no grant recorded, no "Campaign Definitions" permission at all."""
    from airflow.providers.fab.auth_manager.models import Permission, Resource
    from airflow.utils.session import create_session
    from campaign_runs.tables import permission_grant
    from sqlalchemy import delete, select

    for role_name in auth.DEFINITIONS_DEFAULT_ROLES:
        _revoke(role_name)
    with create_session() as session:
        session.execute(delete(permission_grant))
        resource = session.scalars(select(Resource).where(Resource.name == auth.DEFINITIONS_RESOURCE)).one_or_none()
        if resource is not None:
            session.execute(delete(Permission).where(Permission.resource_id == resource.id))
            session.delete(resource)


def _start() -> None:
    """What every start of the API server does (a new process: nothing remembered in memory)."""
    from campaign_runs.core import definition_rights

    auth._definition_permissions_ready = False
    definition_rights.ensure_permissions()


def test_fab_grants_it_once_so_an_admins_revocation_from_op_stays(airflow_db: None) -> None:
    try:
        _fresh_database()
        _start()  # the first start on a fresh database grants it to Admin and Op
        assert _definition_permissions("Op") == _definition_permissions("Admin") == ALL_ACTIONS
        assert auth.may_manage_definitions(_fab_user("alice"), "POST")

        _revoke("Op")  # an administrator takes it from Op (Security -> List Roles)
        _start()
        _start()
        assert _definition_permissions("Op") == set()
        assert not auth.may_manage_definitions(_fab_user("alice"), "POST")
        assert _definition_permissions("Admin") == ALL_ACTIONS
    finally:  # the other tests count on Op holding it
        _fresh_database()
        _start()
    assert _definition_permissions("Op") == ALL_ACTIONS
