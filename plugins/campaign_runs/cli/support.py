"""What every ``airflow campaigns`` command shares: one-line errors and exit codes, confirmation, printing."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any


class CliError(Exception):
    """A user error the CLI reports in one line."""


def _fail(message: str) -> SystemExit:
    return SystemExit(f"Error: {' '.join(message.split())}")  # one line, even for a multi-line YAML error


def edge(func: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """Turn domain and database errors into one line on stderr and exit code 1; quiet logs unless -v."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> None:
        import logging
        import warnings

        from campaign_runs.adapters.cli import DatabaseError, database_error_message
        from campaign_runs.domain import CampaignRunsError

        verbose = bool(getattr(args, "verbose", False))
        if not verbose:
            logging.disable(logging.WARNING)
            warnings.simplefilter("ignore")
        try:
            func(args)
        except CampaignRunsError as error:
            raise _fail(str(error)) from None
        except CliError as error:
            raise _fail(str(error)) from None
        except DatabaseError as error:
            if verbose:
                raise
            raise _fail(database_error_message(error)) from None
        finally:
            if not verbose:
                logging.disable(logging.NOTSET)

    return wrapper


def _normalize(value: Any, output: str) -> Any:
    """JSON/YAML keep types (times as ISO 8601); table and plain get readable text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        if output in ("json", "yaml"):
            return {str(k): _normalize(v, output) for k, v in value.items()}
        return ", ".join(f"{k}={_normalize(v, output)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        items = [_normalize(v, output) for v in value]
        return items if output in ("json", "yaml") else ", ".join(str(v) for v in items)
    if output in ("json", "yaml"):
        return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


class Printer:
    """Prints rows and objects through Airflow's console, normalizing values first (no private API used)."""

    def __init__(self) -> None:
        from campaign_runs.adapters.cli import console

        self.console = console()

    def print(self, text: str) -> None:
        """A line of text."""
        self.console.print(text)

    def print_as(self, rows: list[dict[str, Any]], output: str) -> None:
        """Rows as table, plain, JSON or YAML."""
        renderers = {
            "json": self.console.print_as_json,
            "yaml": self.console.print_as_yaml,
            "table": self.console.print_as_table,
            "plain": self.console.print_as_plain_table,
        }
        if output not in renderers:
            raise CliError(f"unknown output format {output!r}; use one of {', '.join(renderers)}.")
        renderers[output]([{k: _normalize(v, output) for k, v in row.items()} for row in rows])

    def print_object(self, data: dict[str, Any], output: str) -> None:
        """One object: JSON/YAML as an object, table/plain as property/value rows."""
        if output in ("json", "yaml"):
            normalized = {k: _normalize(v, output) for k, v in data.items()}
            (self.console.print_as_json if output == "json" else self.console.print_as_yaml)(normalized)
            return
        self.print_as([{"property": k, "value": v} for k, v in data.items()], output)


def json_object(text: str) -> dict[str, Any]:
    """An argparse type: a JSON object (``--conf``, ``--params``); a usage error otherwise."""
    import json

    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"audience_size\": 100}'")
    return value


def printer() -> Printer:
    return Printer()


def confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on a terminal unless --yes; refuse when standard input is not a terminal."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError("confirmation needed but standard input is not a terminal; pass --yes to confirm.")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("cancelled; nothing was changed.")


# ---------------------------------------------------------------- rendering (table only)


_TABLE_RUN_COLUMNS = ("run_id", "status", "slot", "start_date", "end_date", "progress", "note", "allowed_actions")


def run_table_row(row: dict[str, Any]) -> dict[str, Any]:
    table = {k: row[k] for k in _TABLE_RUN_COLUMNS if k in row}
    table["run_id"] = row["run_id"] or "(upcoming)"
    table["progress"] = f"{row['tasks_done']}/{row['tasks_total']}" if row["tasks_total"] else ""
    table["slot"] = row["slot"]["at"]  # the slot it serves: a restart's is its first run's, not when it restarted
    return {k: table[k] for k in _TABLE_RUN_COLUMNS}


# ---------------------------------------------------------------- handlers
