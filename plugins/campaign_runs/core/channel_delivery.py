"""How each channel delivers: its transport (``smtp``, ``sns``...) or a dry run, for a campaign and for one run.

A campaign says it with its tags: the factory tags each dry-run channel ``dry-run:<channel>``, and the
campaign ``dry-run`` when every channel is one (``domain.DRY_RUN_TAG``). A run says it with its channels as
they were when it started: ``build_audience`` returns them under ``channels`` (name -> ``transport``,
``conn_id``, ``delivery``...), so a Configure during the run does not relabel it. A run whose
``build_audience`` has not returned (or whose XCom is gone) falls back on the campaign's tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from campaign_runs.adapters import dags, tasks
from campaign_runs.domain import DRY_RUN_LABEL, DRY_RUN_TAG

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from sqlalchemy.orm import Session

FROZEN_KEY = "channels"  # build_audience's result: every channel's settings as the run started
DRY_RUN = "dry_run"  # a channel's ``delivery`` (or ``transport``) that sends nothing
# A run from before transports froze no ``transport``: email went over SMTP, SMS and push to the dry-run sink.
LEGACY_TRANSPORTS = {"email": "smtp"}
SINK_TEXT = "nothing is sent, messages are written to a local file"


@dataclass(frozen=True)
class ChannelDelivery:
    """How one channel delivers: ``smtp``, ``sns (dry run)``, ``dry run``; ``""`` while a live one's is unknown."""

    channel: str
    label: str
    dry_run: bool


def dry_run_channels(tags: Sequence[str], channels: Sequence[str]) -> list[str]:
    """The ``channels`` a campaign's tags mark as dry runs, in their order (``dry-run`` alone: every channel)."""
    marked = {tag.split(":", 1)[1] for tag in tags if tag.startswith(f"{DRY_RUN_TAG}:")}
    return [channel for channel in channels if channel in marked or DRY_RUN_TAG in tags]


def frozen_delivery(name: str, frozen: Mapping[str, Any]) -> ChannelDelivery:
    """Channel ``name`` as the run froze it (``ChannelSpec.delivery_label``'s words)."""
    if "transport" not in frozen and "delivery" not in frozen:
        label = LEGACY_TRANSPORTS.get(name, DRY_RUN_LABEL)
        return ChannelDelivery(name, label, label == DRY_RUN_LABEL)
    transport = str(frozen.get("transport") or "")
    if frozen.get("delivery") != DRY_RUN and transport != DRY_RUN:
        return ChannelDelivery(name, transport, False)
    label = DRY_RUN_LABEL if transport in ("", DRY_RUN) else f"{transport} ({DRY_RUN_LABEL})"
    return ChannelDelivery(name, label, True)


def run_deliveries(
    channels: Sequence[str], dry_tagged: Collection[str], audience: Mapping[str, Any] | None
) -> dict[str, ChannelDelivery]:
    """Each channel of a run (declared ones, then any other it froze): frozen when it was, else from the tags."""
    frozen = audience.get(FROZEN_KEY) if audience is not None else None
    frozen = frozen if isinstance(frozen, dict) else {}
    found: dict[str, ChannelDelivery] = {}
    for name in [*channels, *(str(n) for n in frozen if n not in channels)]:
        entry = frozen.get(name)
        if isinstance(entry, dict):
            found[name] = frozen_delivery(name, entry)
        else:
            dry = name in dry_tagged
            found[name] = ChannelDelivery(name, DRY_RUN_LABEL if dry else "", dry)
    return found


def email_facts(deliveries: Collection[ChannelDelivery]) -> dict[str, str] | None:
    """What an email says of the dry-run channels: label, why, and the live ones; None when none is a dry run."""
    dry = [d.channel for d in deliveries if d.dry_run]
    if not dry:
        return None
    if len(dry) == len(deliveries):
        return {"label": DRY_RUN_LABEL, "detail": f"{SINK_TEXT} on every channel", "live": ""}
    live = ", ".join(f"{d.channel} over {d.label}" if d.label else d.channel for d in deliveries if not d.dry_run)
    return {"label": f"{DRY_RUN_LABEL} on {', '.join(dry)}", "detail": f"{SINK_TEXT} there", "live": live}


def campaign_deliveries(dag_id: str, run_id: str | None, session: Session) -> dict[str, ChannelDelivery]:
    """A campaign's channels (its tags) as run ``run_id`` froze them, or as the campaign has them (no run)."""
    tags = dags.tags_of([dag_id], session).get(dag_id, [])
    channels = [tag.split(":", 1)[1] for tag in tags if tag.startswith("channel:")]
    audience = tasks.audience_result(dag_id, run_id, session) if run_id else None
    return run_deliveries(channels, dry_run_channels(tags, channels), audience)
