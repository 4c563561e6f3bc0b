"""Lines of an audience file: UTF-8, each within ``MAX_LINE_BYTES``; a JSON line one flat object."""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator
from typing import Any

from campaign_runs.factory.sources import MAX_LINE_BYTES, AudienceSourceError


class RawReader(io.RawIOBase):
    """A file object of object storage as a raw stream, so ``io.BufferedReader`` gives ``readline(size)``.

    fsspec's files (S3...) take no size in ``readline``: an unbounded read of a line with no end.
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def capped_lines(handle: io.BufferedIOBase | Any) -> Iterator[str]:
    """UTF-8 lines of a binary stream, refusing a line longer than ``MAX_LINE_BYTES``."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    number = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            try:
                decoder.decode(b"", final=True)  # bytes of an unfinished character at the end of the last line
            except UnicodeDecodeError as error:
                raise AudienceSourceError(f"line {number} is not UTF-8: {error.reason}") from error
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise AudienceSourceError(f"line {number} is longer than {MAX_LINE_BYTES} bytes")
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError as error:
            raise AudienceSourceError(f"line {number} is not UTF-8: {error.reason}") from error


def json_object(line: str, number: int) -> dict[str, Any]:
    """JSON line ``number`` as an object of flat values, or an error naming the line."""
    try:
        value = json.loads(line)
    except ValueError as error:
        raise AudienceSourceError(f"line {number} is not JSON: {error}") from error
    except RecursionError as error:  # brackets nested thousands deep
        raise AudienceSourceError(
            f"line {number}: values must be text, numbers, true/false or null, not nested"
        ) from error
    if not isinstance(value, dict):
        raise AudienceSourceError(f"line {number} is not a JSON object")
    if any(isinstance(item, dict | list) for item in value.values()):
        raise AudienceSourceError(f"line {number}: values must be text, numbers, true/false or null, not nested")
    return value
