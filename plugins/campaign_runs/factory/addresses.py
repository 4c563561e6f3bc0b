"""Address checks in linear time: every one is a split and fullmatches of single character classes."""

from __future__ import annotations

import re

EMAIL_MAX = 254  # RFC 5321's longest forward path, less the angle brackets
LOCAL_MAX = 64
_LOCAL = re.compile(r"[^\s@<>,;:\"()\[\]\\\x00-\x1f\x7f]+")
_LABEL = re.compile(r"[^\W_]([\w-]{0,61}[^\W_])?")  # letters and digits (any script), inner hyphens
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def is_email_address(value: str) -> bool:
    """Whether ``value`` is one plain address, ``name@example.com``: no display name, no spaces, a dotted domain."""
    if len(value) > EMAIL_MAX:
        return False
    local, at, domain = value.rpartition("@")
    if not at or not local or len(local) > LOCAL_MAX or not _LOCAL.fullmatch(local):
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)


def control_character(value: str) -> str | None:
    """The first control or line-breaking character of ``value`` (what must never reach a header), or None."""
    found = _CONTROL.search(value)
    return found.group(0) if found else None
