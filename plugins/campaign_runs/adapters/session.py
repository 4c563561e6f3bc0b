"""Airflow's metadata-DB sessions, for the core's ``session: Session = NEW_SESSION`` functions."""

from __future__ import annotations

from airflow.utils.session import NEW_SESSION, create_session, provide_session
from sqlalchemy.orm import Session


def dialect_name(session: Session) -> str:
    """The database dialect behind ``session`` (``sqlite``, ``postgresql``, ...)."""
    return str(session.get_bind().dialect.name)


__all__ = ["NEW_SESSION", "Session", "create_session", "dialect_name", "provide_session"]
