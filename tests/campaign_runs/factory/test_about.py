"""A campaign's About, tags and params say which channels are a dry run, and each channel's transport and Connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from campaign_runs.factory.about import about_markdown, campaign_params, campaign_tags
from campaign_runs.factory.spec import CampaignSpec, parse_spec

CHANNELS: dict[str, Any] = {
    "email": {"subject": "Hi $first_name", "body": "Hello"},
    "sms": {"text": "Hi $first_name"},
    "push": {"title": "New", "body": "For you", "transport": "fcm", "conn_id": "fcm_prod"},
}


def spec(channels: dict[str, Any], **top: Any) -> CampaignSpec:
    data = {
        "id": "about_test",
        "description": "A campaign whose About is read.",
        "owner": "growth",
        "owner_email": "growth@example.com",
        "schedule": {"cron": None, "start_date": "2026-01-01"},
        "audience": {"segment": "testers", "size": 10, "population": 100},
        "channels": channels,
        **top,
    }
    return parse_spec(data, Path("about_test.yaml"))


def rows(markdown: str) -> dict[str, str]:
    """The About's channel table: channel -> its Delivery cell."""
    return {
        cells[0]: cells[1]
        for line in markdown.splitlines()
        if line.startswith("| ") and (cells := [c.strip() for c in line.strip("|").split("|")])[0] in CHANNELS
    }


def test_one_channel_a_dry_run() -> None:
    """SMS without a transport is a dry run (its default); email and push are live."""
    one = spec(CHANNELS)
    assert [c.name for c in one.channels if c.dry_run] == ["sms"] and not one.dry_run
    tags = campaign_tags(one)
    assert "dry-run:sms" in tags and "dry-run" not in tags and "dry-run:email" not in tags
    about = about_markdown(one)
    assert (
        "**Schedule:** Triggered manually (no schedule)  \n**Delivery:** **dry run** on sms: nothing is sent there, "
        in about
    )
    assert "messages are written to a local JSON-lines file; email over smtp, push over fcm\n" in about
    assert "| Channel | Delivery | Batch size | Rate limit | Sending |\n" in about
    assert rows(about) == {
        "email": "smtp, Connection `campaign_smtp`",
        "sms": "**dry run**",
        "push": "fcm, Connection `fcm_prod`",
    }
    params = campaign_params(one)
    assert params["sms_batch_size"].description == "sms (dry run): messages per batch."
    assert params["email_batch_size"].description == "email: messages per batch."


def test_the_campaign_a_dry_run() -> None:
    """``delivery: dry_run`` at the top makes every channel one, whatever its transport."""
    whole = spec(CHANNELS, delivery="dry_run")
    assert whole.dry_run and all(c.dry_run for c in whole.channels)
    tags = campaign_tags(whole)
    assert {"dry-run", "dry-run:email", "dry-run:sms", "dry-run:push"} <= set(tags)
    about = about_markdown(whole)
    line = (
        "**Delivery:** **dry run** (`delivery: dry_run` on the campaign): nothing is sent, "
        "messages are written to a local JSON-lines file\n"
    )
    assert line in about
    assert rows(about) == {
        "email": "**smtp (dry run)**, Connection `campaign_smtp` (not used)",
        "sms": "**dry run**",
        "push": "**fcm (dry run)**, Connection `fcm_prod` (not used)",
    }
    assert campaign_params(whole)["push_connections"].description.startswith("push (dry run): ")


def test_every_channel_a_dry_run_one_by_one_and_every_channel_live() -> None:
    each = spec({"sms": {"text": "Hi"}, "push": {"title": "t", "body": "b", "delivery": "dry_run"}})
    assert each.dry_run and each.delivery == "live"
    assert "**Delivery:** **dry run** (every channel is one): nothing is sent" in about_markdown(each)
    assert "dry-run" in campaign_tags(each)
    live = spec({"email": {"subject": "s", "body": "b"}})
    assert "**Delivery:**" not in about_markdown(live) and "**Schedule:** Triggered manually (no schedule)\n" in (
        about_markdown(live)
    )
    assert not [tag for tag in campaign_tags(live) if tag.startswith("dry-run")]
