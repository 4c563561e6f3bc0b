"""Audience sources: rows streamed from a SQL Connection or a file in object storage, checked as they come."""

from __future__ import annotations

import csv
import io
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice, repeat
from operator import contains
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from campaign_runs.factory.audience import RunSlot
    from campaign_runs.factory.spec import AudienceSpec

MAX_COLUMNS = 200
MAX_VALUE_CHARS = 8192
MAX_LINE_BYTES = 64 * 1024
FETCH_ROWS = 5000  # rows per fetch of a server-side cursor
CHECK_ROWS = 500  # rows checked (then cleaned) together: a fraction of a fetch, so memory stays that of a fetch
SLOT_BINDINGS = ("logical_date", "data_interval_start", "data_interval_end", "run_id")
FILE_FORMATS = ("csv", "jsonl")


class AudienceSourceError(Exception):
    """The audience cannot be read: a missing Connection, a query error or timeout, a malformed row."""


Row = dict[str, Any]


def bindings(slot: RunSlot | None, run_id: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Bind parameters of a query: the run's scalar params, then the slot (ISO 8601 strings) and ``run_id``."""
    values: dict[str, Any] = {
        name: value
        for name, value in (params or {}).items()
        if isinstance(name, str) and (value is None or isinstance(value, str | int | float | bool))
    }
    values.update(
        logical_date=slot.logical_date if slot else None,
        data_interval_start=slot.data_interval_start if slot else None,
        data_interval_end=slot.data_interval_end if slot else None,
        run_id=run_id,
    )
    return values


def checked_row(raw: dict[Any, Any], number: int, unit: str = "row") -> Row:
    """A source row with text column names and scalar values within the caps, or an error naming the row (line)."""
    if len(raw) > MAX_COLUMNS:
        raise AudienceSourceError(f"{unit} {number}: {len(raw)} columns; the limit is {MAX_COLUMNS}")
    row: Row = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name:
            raise AudienceSourceError(f"{unit} {number}: a column has no name")
        if value is not None and not isinstance(value, str | int | float | bool):
            value = str(value)  # a date, a decimal: templates show its text
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise AudienceSourceError(
                f"{unit} {number}: column {name[:60]!r} holds {len(value)} characters; the limit is {MAX_VALUE_CHARS}"
            )
        if isinstance(value, str) and "\x00" in value:  # no PostgreSQL snapshot could hold it
            raise AudienceSourceError(f"{unit} {number}: column {name[:60]!r} holds a NUL character")
        row[name] = value
    return row


PLAIN = frozenset({str, int, float, bool, type(None)})


def checked_rows(names: tuple[str, ...], rows: list[Sequence[Any]], first: int) -> list[Sequence[Any]]:
    """``checked_row`` of each of ``rows`` (numbered from ``first``), as rows of the values of ``names``.

    A chunk is checked column by column; only a chunk holding something to convert or refuse goes row by row.
    """
    plain = len(set(names)) == len(names) <= MAX_COLUMNS and all(isinstance(name, str) and name for name in names)
    for column in zip(*rows, strict=True) if plain else ():
        if not set(map(type, column)) <= PLAIN:
            plain = False
        elif texts := [value for value in column if type(value) is str]:
            plain = max(map(len, texts)) <= MAX_VALUE_CHARS and not any(map(contains, texts, repeat("\x00")))
        if not plain:
            break
    if plain:
        return rows
    checked = (checked_row(dict(zip(names, row, strict=True)), first + n) for n, row in enumerate(rows))
    return [tuple(row[name] for name in names) for row in checked]  # a repeated name: the last value, as a dict


class AudienceSource(ABC):
    """Where a campaign's recipients come from; ``rows`` streams them, ``columns`` names what each row holds."""

    label: str = ""

    @abstractmethod
    def rows(self, values: dict[str, Any]) -> Iterator[Row]:
        """Every row, streamed, with ``values`` as the bind parameters of a query."""

    @abstractmethod
    def columns(self, values: dict[str, Any]) -> list[str]:
        """The column names a row holds, read without reading the rows."""


def connection_of(conn_id: str) -> Any:
    """The Airflow Connection ``conn_id``; an ``AudienceSourceError`` naming it when it does not exist."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as error:
        raise AudienceSourceError(f"the Connection {conn_id!r} does not exist") from error


@dataclass
class SqlSource(AudienceSource):
    """A query run through the common-sql hook of an Airflow Connection, streamed with a server-side cursor."""

    conn_id: str
    query: str
    timeout_seconds: float

    @property
    def label(self) -> str:  # type: ignore[override]
        """How the audience is shown."""
        return f"SQL query on Connection {self.conn_id}"

    def engine(self) -> Any:
        """A SQLAlchemy engine from the Connection's ``DbApiHook``."""
        from airflow.providers.common.sql.hooks.sql import DbApiHook

        try:
            hook = connection_of(self.conn_id).get_hook()
        except AudienceSourceError:
            raise
        except Exception as error:  # a conn_type with no provider installed
            raise AudienceSourceError(f"the Connection {self.conn_id!r} has no SQL hook: {error}") from error
        if not isinstance(hook, DbApiHook):
            raise AudienceSourceError(f"the Connection {self.conn_id!r} is not a SQL database ({type(hook).__name__})")
        return hook.get_sqlalchemy_engine()

    @contextmanager
    def session(self) -> Iterator[Any]:
        """A SQLAlchemy connection to the source, read-only and limited to ``timeout_seconds``."""
        engine = self.engine()
        try:
            with engine.connect() as connection:
                deadline = time.monotonic() + self.timeout_seconds
                _limit_time(connection, self.timeout_seconds, deadline)
                yield connection
        finally:
            engine.dispose()

    def rows(self, values: dict[str, Any]) -> SqlRows:
        """The query's rows, ``FETCH_ROWS`` at a time from a server-side cursor (read once iterated)."""
        return SqlRows(self, values)

    def chunks(self, values: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], list[Sequence[Any]]]]:
        """The column names and checked rows of the query, ``CHECK_ROWS`` at a time (fetched by ``FETCH_ROWS``)."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        started = time.monotonic()
        try:
            with self.session() as connection:
                # yield_per on the result: as an execution option, SQLAlchemy ignores it for a text() query
                result = connection.execution_options(stream_results=True).execute(text(self.query), values)
                result = result.yield_per(FETCH_ROWS)
                names, number = tuple(result.keys()), 1
                while partition := list(islice(result, min(CHECK_ROWS, FETCH_ROWS))):
                    checked = checked_rows(names, partition, number)
                    number += len(checked)
                    yield names, checked
        except SQLAlchemyError as error:
            raise AudienceSourceError(self.failure(error, started)) from error

    def failure(self, error: Exception, started: float) -> str:
        """The database's message; past ``timeout_seconds``, said to be the timeout (SQLite says "interrupted")."""
        message = _database_message(error)
        if time.monotonic() - started >= self.timeout_seconds:
            message += f" (the query ran longer than timeout_seconds: {self.timeout_seconds:g} s)"
        return message

    def columns(self, values: dict[str, Any]) -> list[str]:
        """The query's result columns, read by running it with no row wanted."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        started = time.monotonic()
        try:
            with self.session() as connection:
                query = f"SELECT * FROM ({self.query.strip().rstrip(';')}) campaign_audience WHERE 1=0"
                return list(connection.execute(text(query), values).keys())
        except SQLAlchemyError as error:
            raise AudienceSourceError(self.failure(error, started)) from error


class SqlRows(Iterator[Row]):
    """The rows of a ``SqlSource`` query as dicts, read when first iterated; ``source`` and ``values`` say which.

    The snapshot reads them by the chunk (``chunks``), or has the database copy them (``snapshot_sql``).
    """

    def __init__(self, source: SqlSource, values: dict[str, Any]) -> None:
        self.source = source
        self.values = values
        self._rows: Iterator[Row] | None = None

    def __iter__(self) -> SqlRows:
        return self

    def __next__(self) -> Row:
        if self._rows is None:
            self._rows = (dict(zip(n, row, strict=True)) for n, chunk in self.chunks() for row in chunk)
        return next(self._rows)

    def chunks(self) -> Iterator[tuple[tuple[str, ...], list[Sequence[Any]]]]:
        """The column names and checked rows, one fetch at a time."""
        return self.source.chunks(self.values)

    def close(self) -> None:
        """Stop reading: the source's cursor and connection are closed."""
        if self._rows is not None:
            self._rows.close()  # type: ignore[attr-defined]


def _database_message(error: Exception) -> str:
    """The database's own message, first line of it, without SQLAlchemy's background link."""
    original = getattr(error, "orig", None) or error
    message = str(original).strip().splitlines()
    return f"the query failed: {message[0] if message else type(original).__name__}"


def _limit_time(connection: Any, seconds: float, deadline: float) -> None:
    """Make the session read-only and give up after ``seconds``: an audience query never changes the user's data.

    PostgreSQL: ``default_transaction_read_only`` and ``statement_timeout``; SQLite: ``query_only`` and a progress
    check; MySQL: a read-only transaction and ``max_execution_time``.
    """
    from sqlalchemy import text

    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SET default_transaction_read_only = on"))
        connection.execute(text(f"SET statement_timeout = {int(seconds * 1000)}"))
        connection.commit()  # the settings hold for the session; the query runs in a transaction of its own
    elif dialect == "sqlite":
        driver = connection.connection.driver_connection
        driver.execute("PRAGMA query_only = ON")
        driver.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    elif dialect in ("mysql", "mariadb"):
        connection.execute(text(f"SET SESSION max_execution_time = {int(seconds * 1000)}"))
        connection.execute(text("SET SESSION TRANSACTION READ ONLY"))


@dataclass
class FileSource(AudienceSource):
    """A CSV or JSON-lines file read through Airflow's object storage (``file://``, ``s3://`` with a Connection)."""

    url: str
    conn_id: str
    format: str

    @property
    def label(self) -> str:  # type: ignore[override]
        """How the audience is shown."""
        return f"{self.format.upper()} file {self.url}"

    def path(self) -> Any:
        """The ``ObjectStoragePath`` of the file."""
        from airflow.sdk import ObjectStoragePath

        if self.conn_id:
            connection_of(self.conn_id)
        if self.url.startswith("file://"):
            check_file_root(self.url)
        try:
            return ObjectStoragePath(self.url, conn_id=self.conn_id or None)
        except Exception as error:
            raise AudienceSourceError(f"cannot open {self.url}: {error}") from error

    @contextmanager
    def _lines(self) -> Iterator[Iterator[str]]:
        from campaign_runs.factory.source_lines import RawReader, capped_lines

        try:
            handle = self.path().open("rb")
        except AudienceSourceError:
            raise
        except Exception as error:  # FileNotFoundError, an S3 access error...
            raise AudienceSourceError(f"cannot read {self.url}: {type(error).__name__}: {error}") from error
        with handle:
            yield capped_lines(io.BufferedReader(RawReader(handle)))

    def rows(self, values: dict[str, Any]) -> Iterator[Row]:
        """The file's rows, one line at a time."""
        from campaign_runs.factory.source_lines import json_object

        with self._lines() as lines:
            if self.format == "csv":
                reader = csv.DictReader(lines, strict=True)
                try:
                    for raw in reader:
                        if None in raw:
                            raise AudienceSourceError(f"line {reader.line_num}: more fields than the header names")
                        yield checked_row(raw, reader.line_num, "line")
                except csv.Error as error:  # DictReader's own line_num is the last row's
                    raise AudienceSourceError(f"line {reader.reader.line_num}: {error}") from error
                return
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield checked_row(json_object(line, number), number, "line")

    def columns(self, values: dict[str, Any]) -> list[str]:
        """The CSV header, or the keys of the first JSON line."""
        from campaign_runs.factory.source_lines import json_object

        with self._lines() as lines:
            if self.format == "csv":
                reader = csv.reader(lines, strict=True)
                try:
                    return list(next(reader, []))
                except csv.Error as error:
                    raise AudienceSourceError(f"line {reader.line_num}: {error}") from error
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    return list(json_object(line, number))
        return []


def file_roots() -> list[Path]:
    """Folders a ``file://`` audience may be read from: ``[campaign_runs] audience_file_roots``, else the defaults.

    The defaults: the DAGs folder, ``$AIRFLOW_HOME/audiences`` and ``[campaign_runs] definitions_folder`` (where a
    relative url of the campaigns written there points).
    """
    import os

    from airflow.sdk import conf

    configured = str(conf.get("campaign_runs", "audience_file_roots", fallback="") or "")
    if configured.strip():
        return [Path(item.strip()).expanduser().resolve() for item in configured.split(",") if item.strip()]
    home = Path(os.environ.get("AIRFLOW_HOME") or Path("~/airflow").expanduser())
    dags = conf.get("core", "dags_folder", fallback="") or str(home / "dags")
    roots = [Path(dags).expanduser().resolve(), (home / "audiences").resolve()]
    written = str(conf.get("campaign_runs", "definitions_folder", fallback="") or "").strip()
    return [*roots, Path(written).expanduser().resolve()] if written else roots  # a relative url of its campaigns


def check_file_root(url: str) -> None:
    """Refuse a ``file://`` URL outside the allowed folders: a campaign may not read any file of the worker."""
    from airflow.sdk import ObjectStoragePath

    # The path object storage opens: to it, "?", "#" and "%" are part of the path, and a host is a folder.
    path = Path(ObjectStoragePath(url).path).resolve()
    roots = file_roots()
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise AudienceSourceError(f"{url} is outside the folders audiences may be read from ({allowed})")


def source_for(audience: AudienceSpec) -> AudienceSource:
    """The source an audience declares (``sql`` or ``file``); the demo source has none."""
    if audience.source == "sql":
        return SqlSource(conn_id=audience.conn_id, query=audience.query, timeout_seconds=audience.timeout_seconds)
    if audience.source == "file":
        return FileSource(url=audience.url, conn_id=audience.conn_id, format=audience.format)
    raise ValueError(f"the {audience.source} audience has no source to read")
