"""Airflow's CLI building blocks: command declarations, shared arguments and the console that prints."""

from __future__ import annotations

from typing import Any

from airflow.cli.cli_config import ARG_OUTPUT, ARG_VERBOSE, ARG_YES, ActionCommand, Arg, GroupCommand
from sqlalchemy.exc import DBAPIError as DatabaseError


def arg(flags: tuple[str, ...], **kwargs: Any) -> Arg:
    """One command-line argument (Airflow's ``Arg``)."""
    return Arg(flags, **kwargs)  # type: ignore[no-untyped-call]


def console() -> Any:
    """Airflow's console (rich), as ``airflow`` commands print tables, JSON and YAML."""
    from airflow.cli.simple_table import AirflowConsole

    return AirflowConsole()


def database_error_message(error: Exception) -> str:
    """One line that tells an operator what a database error means and what to do."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    text = lines[0].strip() if lines else ""
    lowered = text.lower()
    if "campaign_" in lowered and ("no such table" in lowered or "does not exist" in lowered):
        return (
            "The Campaign Runs tables are missing from the metadata database; run `airflow db migrate` to create them."
        )
    if "no such table" in lowered or "does not exist" in lowered or "undefinedtable" in lowered:
        return "The metadata database is not migrated; run `airflow db migrate`."
    return f"Database error: {text or type(error).__name__}"


__all__ = ["ARG_OUTPUT", "ARG_VERBOSE", "ARG_YES", "ActionCommand", "DatabaseError", "GroupCommand", "arg", "console"]
