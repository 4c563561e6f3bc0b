"""Airflow's FastAPI security dependencies, for the REST API's routes (the JWT that ``/api/v2`` accepts)."""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag

__all__ = ["DagAccessEntity", "GetUserDep", "requires_access_dag"]
