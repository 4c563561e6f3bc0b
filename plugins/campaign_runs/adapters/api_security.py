"""Airflow's FastAPI security dependencies, for the REST API's routes (the JWT that ``/api/v2`` accepts)."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

__all__ = ["DagAccessEntity", "GetUserDep", "cookie_path", "jwt_cookie_name", "requires_access_dag", "secret_key"]


def jwt_cookie_name() -> str:
    """The cookie Airflow's UI keeps its JWT in (``_token``)."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    return COOKIE_NAME_JWT_TOKEN


def secret_key() -> str:
    """``[api] secret_key``: signs the UI routes' CSRF tokens and one-time messages."""
    from airflow.configuration import conf

    return str(conf.get("api", "secret_key"))


def cookie_path() -> str:
    """The path Airflow's cookies are set on (the API server's root path)."""
    from airflow.api_fastapi.app import get_cookie_path

    return str(get_cookie_path())
