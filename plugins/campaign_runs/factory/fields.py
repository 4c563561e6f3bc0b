"""Reading the fields of an untrusted campaign document: typed, capped, every error naming its field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from campaign_runs.factory.addresses import control_character

ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,200}")  # always used with fullmatch: "$" also matches before a newline
COLUMN_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
TEXT_MAX = 10_000  # characters of any text field (the plugin's own template limit is the same)
LINE_MAX = 200  # characters of a one-line setting that becomes a header or a sender id


class CampaignSpecError(ValueError):
    """A campaign file that cannot be turned into a DAG; names the file and the field."""

    def __init__(self, source: Path, field_name: str, message: str) -> None:
        self.source = source
        self.field_name = field_name
        self.message = message
        where = f"field '{field_name}'" if field_name else "file"
        super().__init__(f"Campaign file {source}: {where}: {message}")


class Fields:
    """Reads one mapping of the YAML document and reports errors with the dotted field name."""

    def __init__(self, source: Path, data: Any, prefix: str, allowed: frozenset[str]) -> None:
        self.source = source
        self.prefix = prefix
        if not isinstance(data, dict):
            raise CampaignSpecError(source, prefix.rstrip(".") or "", "expected a mapping of fields")
        unknown = sorted(str(key) for key in data if key not in allowed)
        if unknown:
            raise CampaignSpecError(
                source, prefix + unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )
        self.data: dict[str, Any] = data

    def error(self, name: str, message: str) -> CampaignSpecError:
        """An error about field ``name`` of this mapping."""
        return CampaignSpecError(self.source, self.prefix + name, message)

    def raw(self, name: str, *, required: bool) -> Any:
        """The value of ``name``; raises when it is required and missing."""
        if name not in self.data or self.data[name] is None:
            if required:
                raise self.error(name, "is required")
            return None
        return self.data[name]

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        default: str = "",
        pattern: re.Pattern[str] | None = None,
        one_line: bool = False,
    ) -> str:
        """A non-empty string field of at most ``TEXT_MAX`` characters (``LINE_MAX`` and no line break if one-line)."""
        value = self.raw(name, required=required)
        if value is None:
            return default
        return checked_text(value, lambda message: self.error(name, message), pattern=pattern, one_line=one_line)

    def integer(self, name: str, *, default: int, minimum: int) -> int:
        """An integer field with a lower bound."""
        value = self.raw(name, required=False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.error(name, f"must be at least {minimum}, got {value}")
        return value

    def bounded(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        """An integer field between two bounds."""
        value = self.integer(name, default=default, minimum=minimum)
        if value > maximum:
            raise self.error(name, f"must be at most {maximum}, got {value}")
        return value

    def number(self, name: str, *, default: float) -> float:
        """A non-negative number field."""
        value = self.raw(name, required=False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(name, f"must be a number >= 0, got {value!r}")
        return float(value)

    def boolean(self, name: str, *, default: bool) -> bool:
        """A true/false field."""
        value = self.raw(name, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {value!r}")
        return value

    def sub(self, name: str, allowed: frozenset[str]) -> Fields:
        """The nested mapping ``name``."""
        return Fields(self.source, self.raw(name, required=True), f"{self.prefix}{name}.", allowed)


def shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def checked_text(
    value: Any,
    error: Any,
    *,
    pattern: re.Pattern[str] | None = None,
    one_line: bool = False,
) -> str:
    """``value`` stripped when it is a non-empty string within the limits, else ``error(message)`` raised."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"must be a non-empty string, got {shown(value)}")
    limit = LINE_MAX if one_line else TEXT_MAX
    if len(value) > limit:
        raise error(f"is {len(value)} characters long; the limit is {limit}")
    # A multi-line text may hold line ends (LF, or CRLF as a browser's textarea sends them) and tabs.
    lines = value.replace("\r\n", "").replace("\n", "").replace("\t", "")
    char = control_character(value.strip() if one_line else lines)
    if char is not None:
        why = " (it must be one line)" if one_line else ""
        raise error(f"contains the control character U+{ord(char):04X}{why}")
    if pattern is not None and not pattern.fullmatch(value):
        raise error(f"{shown(value)} does not match {pattern.pattern}")
    return value.strip()


Scalar = str | int | float | bool


def scalar(value: Any, error: Any) -> Scalar:
    if isinstance(value, bool | int | float):
        return value
    return checked_text(value, error, one_line=True)
