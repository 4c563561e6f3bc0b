"""A webhook channel on an audience read from the user's data reaches only whom its address's channel may."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.factory.documents import load_yaml
from campaign_runs.factory.spec import CampaignSpecError, parse_spec

from tests.campaign_runs.factory.test_suppression import run_channel
from tests.support.rigs import webhook as webhook_rig

CAMPAIGN = """
id: hook_people
description: Webhook to a CSV audience.
owner: lifecycle
owner_email: lifecycle@example.com
schedule: {{cron: null, timezone: UTC, start_date: 2025-01-01}}
audience:
  source: file
  url: people.csv
  columns: {{id: person_id}}
  consent_column: opted_in
channels:
  webhook: {{transport: http, conn_id: {conn_id}, body: '{body}', endpoint: {endpoint}{address}}}
"""
ROWS = [  # person_id, email, opted_in
    ("p0", "ann@example.org", "yes"),
    ("p1", "bob@example.org", "no"),  # no consent: no webhook for Bob
    ("p2", "not-an-address", "yes"),  # an email the email channel could not send to
    ("p3", "ann@example.org", "yes"),  # the same address again
    ("p4", "cy@example.org", "true"),
]
SLOT = dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The webhook rig: a receiver that checks each request."""
    with webhook_rig.rig(monkeypatch) as running:
        yield running


def spec_of(folder: Path, monkeypatch: pytest.MonkeyPatch, receiver: Any, address: str) -> Any:
    """The campaign over ``people.csv``; ``address`` is the webhook's ``address_field`` line (or nothing)."""
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__AUDIENCE_FILE_ROOTS", str(folder))
    lines = ["person_id,email,opted_in,first_name,country", *(f"{i},{e},{c},Name,FR" for i, e, c in ROWS)]
    (folder / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = receiver.settings
    text = CAMPAIGN.format(
        conn_id=receiver.conn_id,
        body=settings["body"].replace("'", "''"),
        endpoint=settings["endpoint"],
        address=f", address_field: {address}" if address else "",
    )
    return parse_spec(load_yaml(text), folder / "hook_people.yaml")


def test_a_webhook_addressing_email_skips_whom_the_email_checks_skip(
    tmp_path: Path, sink_dir: Path, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No consent, an invalid address and a repeated address get no webhook; the skips are counted by reason."""
    spec = spec_of(tmp_path, monkeypatch, receiver, "email")
    result, _ = run_channel(spec, "webhook", "manual__hook", SLOT)

    assert receiver.accepted() == ["p0", "p4"]  # the receiver records each body's "to": the recipient's id
    assert (result["sent"], result["failed"]) == (2, 0)
    assert result["skipped"] == {"no_consent": 1, "invalid_address": 1, "duplicate": 1}


def test_a_webhook_addressing_ids_is_refused_for_an_audience_from_your_data(
    tmp_path: Path, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing would check consent or addresses for it: the definition is refused, naming the field."""
    with pytest.raises(CampaignSpecError) as refused:
        spec_of(tmp_path, monkeypatch, receiver, "")
    assert refused.value.field_name == "channels.webhook.address_field"
    assert "must be email, phone or push_token" in refused.value.message
