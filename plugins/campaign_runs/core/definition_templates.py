"""The templates of a definition, checked before the factory sees it: sizes, and placeholders a message can fill.

The demo audience's recipient fields are known here. A SQL or file audience's are the source's columns, known
only by reading it: ``core.audiences`` checks those placeholders against the source when a definition is
validated or saved (``factory.preview.check_audience``).
"""

from __future__ import annotations

import re
from typing import Any

from campaign_runs.domain import DefinitionInvalidError
from campaign_runs.factory.preview import TEMPLATE_SETTINGS

MAX_TEMPLATE_CHARS = 10_000
PLACEHOLDER = re.compile(r"\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\}|())")
RECIPIENT_PLACEHOLDERS = frozenset(  # the demo generator's recipient fields ("device_token": its former name)
    {"id", "position", "first_name", "last_name", "email", "phone", "push_token", "device_token", "country"}
    | {"campaign_id", "campaign_description", "run_id", "unsubscribe_url"}
)
SOURCE_AUDIENCES = frozenset({"sql", "file"})

__all__ = ["MAX_TEMPLATE_CHARS", "PLACEHOLDER", "RECIPIENT_PLACEHOLDERS", "TEMPLATE_SETTINGS", "check_templates"]


def _mapping(data: Any, key: str) -> dict[str, Any]:
    """``data[key]`` when both are mappings, else an empty mapping (the factory reports the wrong type)."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def known_placeholders(data: dict[str, Any]) -> frozenset[str] | None:
    """The placeholders the demo audience fills; None for a SQL or file audience (its source says)."""
    audience = _mapping(data, "audience")
    if audience.get("source") in SOURCE_AUDIENCES:
        return None
    criteria = _mapping(audience, "criteria")
    return RECIPIENT_PLACEHOLDERS | {str(key) for key, value in criteria.items() if not isinstance(value, list)}


def check_templates(data: dict[str, Any]) -> None:
    """Every ``$placeholder`` of every template is one a message can fill; no template is oversized."""
    known = known_placeholders(data)
    for channel, settings in _mapping(data, "channels").items():
        for key in TEMPLATE_SETTINGS.get(str(channel), ()):
            template = (settings or {}).get(key) if isinstance(settings, dict) else None
            if not isinstance(template, str):
                continue
            field = f"channels.{channel}.{key}"
            if len(template) > MAX_TEMPLATE_CHARS:
                raise DefinitionInvalidError(
                    field, f"is {len(template)} characters long; the limit is {MAX_TEMPLATE_CHARS}"
                )
            for match in PLACEHOLDER.finditer(template):
                name = match.group(2) or match.group(3)
                if known is not None and name is not None and name not in known:
                    raise DefinitionInvalidError(
                        field, f"unknown placeholder ${name} (known: {', '.join('$' + k for k in sorted(known))})"
                    )
