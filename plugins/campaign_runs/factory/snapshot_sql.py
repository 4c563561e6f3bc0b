"""A PostgreSQL audience cleaned by its own database: the snapshot rows as one ``SELECT``, copied to the ledger.

``SnapshotPlan.row`` in SQL: the source's read-only session runs ``COPY (SELECT ...) TO STDOUT`` around the query,
each line a snapshot row (the same text, the same skip reasons), and the ledger takes the lines with ``COPY ...
FROM STDIN``: no Python per row. What SQL cannot decide exactly as Python does is left to Python: a column of
another type than text, integer or boolean has the whole audience streamed; an address with a non-ASCII character
is marked (``CHECK``) and decided afterwards by ``address_problem`` (``SnapshotStore`` does).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaign_runs.factory.hygiene import (
    ADDRESS_FIELDS,
    CHECK,
    CHECK_NO_CONSENT,
    INVALID,
    MAX_PUSH_TOKEN,
    MISSING,
    NO_CONSENT,
    NO_ID,
    TRUE_WORDS,
    SnapshotPlan,
)
from campaign_runs.factory.snapshot_copy import CHUNK_ROWS
from campaign_runs.factory.sources import MAX_COLUMNS, MAX_VALUE_CHARS, AudienceSourceError

if TYPE_CHECKING:
    from psycopg.waiting import Wait

    from campaign_runs.factory.sources import SqlSource

ENABLED = True  # False: every audience is streamed through Python (the benchmark measures both ways)
KINDS = {16: "bool", 20: "int", 21: "int", 23: "int", 25: "text", 1043: "text"}  # type OID -> how it is read
# What str.strip() takes off (str.isspace()); what str.lower() makes one ASCII letter (consent words are folded
# as Python folds them). Tests check both against every code point.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ\u212a"
LOCAL = r"[-!#-'*+/-9=?A-Z^-~]+"  # is_email_address's local part, ASCII: dot-separated runs of printable ASCII but
# space and <>,;:"()[]\@ (a match is ASCII: an address that does not match is invalid only if it is ASCII)
LABEL = r"[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?"  # a domain label, ASCII (its length checked apart)
PATTERNS = {
    "email": rf"^{LOCAL}(\.{LOCAL})*@{LABEL}(\.{LABEL})+$",
    "sms": r"^\+[1-9][0-9]{6,14}$",
    "push": r"^[ -~]*$",  # printable ASCII
}
TOO_LONG = re.compile(r"campaign_runs:too_long:(\d+):(\d+):(\d+)")


@dataclass(frozen=True)
class Column:
    """A column of the query's result: its name, how it is read, and its name in the generated SQL."""

    name: str
    kind: str
    ref: str

    def json(self) -> str:
        """The value as ``json.dumps`` writes it (to_json, whose type lookup each row a boolean or integer can skip)."""
        if self.kind == "int":
            return f"COALESCE({self.ref}::text, 'null')"
        if self.kind == "bool":
            return f"CASE WHEN {self.ref} THEN 'true' WHEN NOT {self.ref} THEN 'false' ELSE 'null' END"
        return f"COALESCE(to_json({self.ref})::text, 'null')"

    def text(self) -> str:
        """The value as Python's ``str()`` writes it (NULL stays NULL)."""
        if self.kind == "int":
            return f"{self.ref}::text"
        if self.kind == "bool":
            return f"CASE WHEN {self.ref} THEN 'True' WHEN NOT {self.ref} THEN 'False' END"
        return self.ref


def spellings() -> set[str]:
    """Every text ``str.lower()`` makes one of the consent words: each letter in any case (``UPPER`` folds)."""
    found = {""}
    for word in TRUE_WORDS:
        variants = [""]
        for letter in word:
            cases = {letter, *(upper for upper, lower in zip(UPPER, UPPER.lower(), strict=True) if lower == letter)}
            variants = [start + case for start in variants for case in sorted(cases)]
        found.update(variants)
    return found - {""}


def columns_of(description: Any) -> list[Column] | None:
    """The result's columns, or None when SQL cannot read them as Python would (a type, too many, a name twice)."""
    names = [str(column.name) for column in description or ()]
    kinds = [KINDS.get(int(column.type_code)) for column in description or ()]
    if not names or len(names) > MAX_COLUMNS or len(set(names)) < len(names) or None in kinds:
        return None
    return [Column(name, str(kind), f"c{n}") for n, (name, kind) in enumerate(zip(names, kinds, strict=True), 1)]


class Select:
    """The ``SELECT`` of the snapshot rows of a query whose result has ``columns``, under ``plan``."""

    def __init__(self, plan: SnapshotPlan, columns: list[Column]) -> None:
        self.plan = plan
        self.columns = columns
        self.by_name = {column.name: column for column in columns}
        self.params: dict[str, str] = {}

    def bind(self, value: str) -> str:
        """A placeholder for ``value`` (every constant that is not plain ASCII words is bound, never pasted)."""
        for name, bound in self.params.items():
            if bound == value:
                return f"%({name})s"
        name = f"cr.{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def field(self, name: str) -> Column | None:
        """The column recipient field ``name`` is read from (None: no such column, so the value is None)."""
        return self.by_name.get(self.plan.columns.get(name, name))

    def address(self, name: str) -> str:
        """``normalised_address`` (the recipient id alike): stripped text; a phone number without punctuation."""
        column = self.field(name)
        if column is None:
            return "''"
        if name == "phone":  # translate() is slow: a number already written +digits is kept as it is
            text, plain = column.text(), self.bind(r"^\+?[0-9]*$")
            removed = f"translate({text}, {self.bind(WHITESPACE + '().-')}, '')"
            return f"COALESCE(CASE WHEN {text} ~ {plain} THEN {text} ELSE {removed} END, '')"
        return f"COALESCE(btrim({column.text()}, {self.bind(WHITESPACE)}), '')"

    def consents(self, name: str) -> str:
        """``hygiene.consents`` of column ``name`` (false when there is no such column)."""
        column = self.by_name.get(name)
        if column is None:
            return "false"
        if column.kind == "bool":
            return f"COALESCE({column.ref}, false)"
        if column.kind == "int":
            return f"COALESCE({column.ref} = 1, false)"
        words = ", ".join(self.bind(word) for word in sorted(spellings()))
        return f"COALESCE(btrim({column.ref}, {self.bind(WHITESPACE)}) IN ({words}), false)"

    def consent(self) -> str:
        """The consent columns of a row: ``ok`` for the audience's, ``ok_<channel>`` for a channel's own."""
        audience = self.consents(self.plan.consent_column) if self.plan.consent_column else "true"
        own = (
            f", {self.consents(name)} AS ok_{channel}"
            for channel in ADDRESS_FIELDS
            if channel in self.plan.channels and (name := self.plan.channel_consent.get(channel))
        )
        return f", {audience} AS ok" + "".join(own)

    def fields(self) -> str:
        """The template values as ``json.dumps`` writes them: the row's columns, mapped names, no id or address."""
        values: dict[str, Column | None] = {column.name: column for column in self.columns}
        for name, source in self.plan.columns.items():
            values[name] = self.by_name.get(source)
        for name in ("id", *ADDRESS_FIELDS.values()):
            values.pop(name, None)
        parts = []
        for n, (name, column) in enumerate(values.items()):
            key = self.bind(("{" if n == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": ")
            parts.append(f"{key} || {column.json() if column else repr('null')}")
        return " || ".join(parts) + " || '}'" if parts else "'{}'"

    def skip(self, channel: str) -> str:
        """The channel's skip reason of a row (duplicates apart): ``SnapshotPlan.row``'s, or a mark for Python."""
        if channel not in self.plan.channels:
            return "NULL"
        address, pattern = f"a_{channel}", self.bind(PATTERNS[channel])
        ok = f"ok AND ok_{channel}" if self.plan.channel_consent.get(channel) else "ok"
        if channel == "sms":
            return (
                f"CASE WHEN rid = '' THEN '{NO_ID}' WHEN a_sms = '' THEN '{MISSING}' WHEN a_sms !~ {pattern} THEN "
                f"'{INVALID}' WHEN NOT ({ok}) THEN '{NO_CONSENT}' END"
            )
        valid = (  # only ASCII matches: the usual address is decided without counting its characters
            "octet_length(a_email) <= 254 AND strpos(a_email, '@') <= 65 AND a_email ~ {pattern} AND "
            "(octet_length(a_email) <= 64 OR split_part(a_email, '@', 2) !~ '[^.]{{64}}')"
            if channel == "email"
            else f"octet_length(a_push) <= {MAX_PUSH_TOKEN} AND a_push ~ {{pattern}}"
        ).format(pattern=pattern)
        mark = f"CASE WHEN {ok} THEN '{CHECK}' ELSE '{CHECK_NO_CONSENT}' END"
        return (
            f"CASE WHEN rid = '' THEN '{NO_ID}' WHEN {address} = '' THEN '{MISSING}' "
            f"WHEN {valid} THEN CASE WHEN NOT ({ok}) THEN '{NO_CONSENT}' END "
            f"WHEN octet_length({address}) <> char_length({address}) THEN {mark} ELSE '{INVALID}' END"
        )

    def guard(self) -> str:
        """0, or an error naming the first value longer than ``MAX_VALUE_CHARS`` (``checked_row``'s refusal)."""
        tests = [
            f"WHEN octet_length({c.ref}) > {MAX_VALUE_CHARS} AND char_length({c.ref}) > {MAX_VALUE_CHARS} "
            f"THEN ('campaign_runs:too_long:' || row_number() OVER () || ':{n}:' || char_length({c.ref}))::integer"
            for n, c in enumerate(self.columns)
            if c.kind == "text"
        ]
        return f"CASE {' '.join(tests)} ELSE 0 END" if tests else "0"

    def sql(self, query: str) -> str:
        """The whole ``SELECT``: the rows numbered, their addresses and consent, then each one's snapshot row."""
        refs = ", ".join(column.ref for column in self.columns)
        # Text compared byte for byte ("C"), as Python compares it, whatever the column's collation says.
        collated = ", ".join(f'{c.ref} COLLATE "C" AS {c.ref}' if c.kind == "text" else c.ref for c in self.columns)
        numbered = f"SELECT row_number() OVER () - 1 + {self.guard()} AS p, {collated} FROM (\n{query}\n) AS q({refs})"
        addresses = ", ".join(f"{self.address(field)} AS a_{channel}" for channel, field in ADDRESS_FIELDS.items())
        cleaned = (  # OFFSET 0: computed once per row, not once per use above
            f"SELECT p, {self.address('id')} AS rid, {addresses}{self.consent()}, {self.fields()} AS fields "
            f"FROM ({numbered}) numbered OFFSET 0"
        )
        skips = "".join(f", ({self.skip(channel)})::text" for channel in ADDRESS_FIELDS)
        return (  # each column of the snapshot table's type: the copy is in binary
            "SELECT p::integer, "
            f"(CASE WHEN rid = '' THEN '#' || p ELSE rid END)::text, a_email::text, a_sms::text, a_push::text"
            f"{skips}, fields::text FROM ({cleaned}) cleaned"
        )


def too_long(message: str, columns: list[Column]) -> str | None:
    """``checked_row``'s words for the guard's error in ``message`` (None: another error)."""
    found = TOO_LONG.search(message)
    if not found:
        return None
    number, index, length = (int(part) for part in found.groups())
    name = columns[index].name[:60]
    return f"row {number}: column {name!r} holds {length} characters; the limit is {MAX_VALUE_CHARS}"


@contextmanager
def copied(source: SqlSource, values: dict[str, Any], plan: SnapshotPlan) -> Iterator[Any]:
    """The snapshot lines of ``source``'s query as its database writes them; None when this source cannot.

    PostgreSQL through psycopg (3), in UTF-8, only. The query is first described with the extended protocol, which
    takes one statement: so it holds no ``;`` and the ``COPY`` around it is one statement too.
    """
    from sqlalchemy import text

    with ExitStack() as stack:
        try:
            connection = stack.enter_context(source.session()) if ENABLED else None
        except Exception:  # no such Connection, no server: the streamed read says so in its words
            connection = None
        described = _described(connection, text(source.query.strip().rstrip(";")), values) if connection else None
        if connection is None or described is None:
            yield None
            return
        statement, params, columns = described
        select = Select(plan, columns)
        copy = f"COPY ({select.sql(statement)}) TO STDOUT (FORMAT binary)"
        lines = _lines(source, connection.connection.driver_connection, copy, {**params, **select.params}, columns)
        try:
            yield lines
        finally:
            lines.close()


def _described(connection: Any, query: Any, values: dict[str, Any]) -> tuple[str, dict[str, Any], list[Column]] | None:
    """The query as the driver takes it, its bound values and its columns; None when SQL cannot take it."""
    driver = connection.connection.driver_connection
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        return None
    if driver.info.encoding != "utf-8" or driver.info.parameter_status("server_encoding") != "UTF8":
        return None
    try:
        compiled = query.compile(dialect=connection.dialect)
        statement, params = compiled.string, dict(compiled.construct_params(values))
        cursor = driver.cursor()
        cursor.execute(f"SELECT * FROM (\n{statement}\n) AS campaign_audience WHERE false", params, binary=True)
    except Exception:  # a query error, a bind missing: the streamed read reports it in the database's words
        return None
    columns = columns_of(cursor.description)
    return (statement, params, columns) if columns else None


def _lines(
    source: SqlSource, driver: Any, copy: str, params: dict[str, Any], columns: list[Column]
) -> Generator[bytes]:
    """The ``COPY``'s data, up to ``CHUNK_ROWS`` rows a piece; the source's error as an ``AudienceSourceError``."""
    started = time.monotonic()
    try:
        with driver.cursor().copy(copy, params):
            ended = False
            while not ended:
                rows, ended = driver.wait(_received(driver.pgconn, CHUNK_ROWS))
                yield b"".join(rows)
    except Exception as error:
        if isinstance(error, AudienceSourceError) or not hasattr(error, "sqlstate"):
            raise
        raise AudienceSourceError(too_long(str(error), columns) or source.failure(error, started)) from error


def _received(pgconn: Any, limit: int) -> Generator[Wait, Any, tuple[list[Any], bool]]:
    """Up to ``limit`` rows of the ``COPY ... TO STDOUT`` in progress (those arrived, else the next), whether it ended.

    What psycopg's ``Copy.read`` does for one row (a trip through its wait loop each: most of a relay's CPU), done
    here for as many rows as libpq holds. At the end, the copy's result is read and its error raised as psycopg
    raises it; psycopg's ``Copy`` then sees the connection done with the copy.
    """
    from psycopg.waiting import Wait

    rows: list[Any] = []
    while len(rows) < limit:
        size, data = pgconn.get_copy_data(1)
        if size > 0:
            rows.append(data)
        elif size < 0:
            yield from _result(pgconn)
            return rows, True
        elif rows:
            break
        else:
            while not (yield Wait.R):
                continue
            pgconn.consume_input()
    return rows, False


def _result(pgconn: Any) -> Generator[Wait, Any, None]:
    """Read the results of the ended ``COPY``; raise the first error among them as psycopg does."""
    from psycopg import errors, pq
    from psycopg.waiting import Wait

    failed = None
    while True:
        while pgconn.is_busy():
            while not (yield Wait.R):
                continue
            pgconn.consume_input()
        if (result := pgconn.get_result()) is None:
            break
        if failed is None and result.status != pq.ExecStatus.COMMAND_OK:
            failed = errors.error_from_result(result, encoding="utf-8")  # the session is UTF-8 (``_described``)
    if failed is not None:
        raise failed
