"""Snapshot rows into PostgreSQL with ``COPY ... FROM STDIN``: rows made in Python (CSV), or another database's copy.

A copy from another database is relayed by a thread of its own: it reads the source's ``COPY ... TO STDOUT`` while
this thread feeds the ledger's, so the source computes the next rows while the ledger stores the last ones.
"""

from __future__ import annotations

import contextlib
import csv
import io
import queue
import threading
from collections.abc import Callable, Iterator
from itertools import islice
from types import SimpleNamespace
from typing import Any

CHUNK_ROWS = 5000
QUEUED_CHUNKS = 8  # chunks read ahead of the ledger: memory stays a few MB whatever the audience's size


def copy_rows(connection: Any, statement: str, rows: Iterator[tuple[Any, ...]]) -> int:
    """``COPY`` (CSV, ``statement``) of ``rows``, fed ``CHUNK_ROWS`` at a time while they are made; rows written."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)

    def read() -> str:
        chunk = list(islice(rows, CHUNK_ROWS))
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(chunk)
        return buffer.getvalue()

    return copy_from(connection, statement, read)


def copy_lines(connection: Any, statement: str, lines: Iterator[bytes], mark: bytes) -> tuple[int, bool]:
    """``COPY`` (binary) of another database's copy in pieces (``lines``); rows written, whether one holds ``mark``."""
    marked = [False]
    with _ReadAhead(lines) as chunks:

        def read() -> bytes:
            data = chunks.next()
            marked[0] = marked[0] or mark in data
            return data

        return copy_from(connection, statement, read), marked[0]


def copy_from(connection: Any, statement: str, chunk: Callable[[], str | bytes]) -> int:
    """Run ``COPY ... FROM STDIN`` ``statement`` on what ``chunk`` gives, until it gives nothing; rows written.

    The first error of ``chunk`` (the source's) is raised as it is, not as the COPY's.
    """
    failure: list[BaseException] = []

    def read(size: int = -1) -> str | bytes:  # psycopg2 asks for more until it gets ""
        try:
            return chunk()
        except BaseException as error:
            failure.append(error)
            raise

    cursor = connection.cursor()
    try:
        cursor.copy_expert(statement, SimpleNamespace(read=read))
        return max(int(cursor.rowcount), 0)
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    finally:
        cursor.close()


class _ReadAhead:
    """Pieces of a copy (``lines``, rows each) read by a thread of its own, ``QUEUED_CHUNKS`` ahead; b"" at the end."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self.lines = lines
        self.chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, name="campaign-audience-copy", daemon=True)

    def __enter__(self) -> _ReadAhead:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()  # the ledger stopped taking chunks: the reader ends at its next chunk
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.chunks.get(timeout=0.1)
        self.thread.join()

    def next(self) -> bytes:
        """The next chunk; the source's error, raised here."""
        item = self.chunks.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _read(self) -> None:
        try:
            for data in self.lines:
                if self.stopped.is_set():
                    return
                if data:
                    self._put(data)
            self._put(b"")
        except BaseException as error:  # raised to the ledger's side by next()
            self._put(error)

    def _put(self, item: bytes | BaseException) -> None:
        while not self.stopped.is_set():
            try:
                self.chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
