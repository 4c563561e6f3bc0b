"""How channels deliver as the plugin shows them (core.channel_delivery): a run's frozen channels, a campaign's tags."""

from __future__ import annotations

import pytest
from campaign_runs.core.channel_delivery import (
    ChannelDelivery,
    dry_run_channels,
    email_facts,
    frozen_delivery,
    run_deliveries,
)
from campaign_runs.domain import DRY_RUN_LABEL, DRY_RUN_TAG

from tests.support.fixtures import EMAIL_LIVE_SMS_DRY, frozen_channels


def test_the_plugin_and_the_factory_say_the_same_words() -> None:
    from campaign_runs.core import channel_delivery
    from campaign_runs.factory.about import DRY_RUN_TAG as FACTORY_TAG
    from campaign_runs.factory.channel_spec import DRY_RUN_LABEL as FACTORY_LABEL
    from campaign_runs.factory.factory import FROZEN_KEY

    assert (DRY_RUN_LABEL, DRY_RUN_TAG, channel_delivery.FROZEN_KEY) == (FACTORY_LABEL, FACTORY_TAG, FROZEN_KEY)


@pytest.mark.parametrize("delivery", ["live", "dry_run"])
def test_a_frozen_channel_reads_as_the_factory_labels_it_for_every_transport(delivery: str) -> None:
    """Every registered (channel, transport), live and dry: the plugin's label is ``ChannelSpec.delivery_label``."""
    from dataclasses import asdict

    from campaign_runs.factory.channel_spec import ChannelSpec
    from campaign_runs.factory.channels import ChannelAdapter

    pairs = sorted(ChannelAdapter.transports)
    assert {("email", "smtp"), ("sms", "dry_run"), ("push", "dry_run")} <= set(pairs)
    for channel, transport in pairs:
        spec = ChannelSpec(channel, 10, 0.0, {}, transport=transport, conn_id="c", delivery=delivery)
        shown = frozen_delivery(channel, asdict(spec))
        assert (shown.label, shown.dry_run) == (spec.delivery_label, spec.dry_run), (channel, transport)
    assert frozen_delivery("push", {"transport": "fcm", "delivery": "dry_run"}).label == "fcm (dry run)"


def test_a_run_from_before_transports_sent_email_over_smtp_and_the_rest_to_the_sink() -> None:
    assert frozen_delivery("email", {"name": "email", "batch_size": 10}) == ChannelDelivery("email", "smtp", False)
    assert frozen_delivery("sms", {"name": "sms", "batch_size": 10}) == ChannelDelivery("sms", "dry run", True)


def test_a_campaign_s_tags_mark_one_channel_or_every_channel() -> None:
    channels = ["email", "sms", "push"]
    assert dry_run_channels(["campaign", "channel:email", "dry-run:sms", "dry-run:push"], channels) == ["sms", "push"]
    assert dry_run_channels(["campaign", "dry-run"], channels) == channels  # ``dry-run`` alone: every channel
    assert dry_run_channels(["campaign", "dry-run:webhook"], channels) == []  # not a channel of the campaign
    assert dry_run_channels(["campaign", "channel:email"], channels) == []


def test_a_run_s_frozen_channels_win_over_the_campaign_s_tags() -> None:
    """A Configure during a run changes the tags, not what the run froze; unfrozen channels follow the tags."""
    frozen = {"source": "demo", **frozen_channels(EMAIL_LIVE_SMS_DRY)}
    found = run_deliveries(["email", "sms", "push"], ["email", "push"], frozen)
    assert found == {
        "email": ChannelDelivery("email", "smtp", False),
        "sms": ChannelDelivery("sms", "dry run", True),
        "push": ChannelDelivery("push", "dry run", True),  # added since: the campaign's tags say it
    }
    assert run_deliveries(["email"], [], None) == {"email": ChannelDelivery("email", "", False)}
    removed = run_deliveries(["email"], [], frozen)  # sms left the campaign since; the run still had it
    assert list(removed) == ["email", "sms"] and removed["sms"].dry_run
    whole = run_deliveries(["email", "sms"], [], frozen_channels(EMAIL_LIVE_SMS_DRY, "dry_run"))
    assert [(d.label, d.dry_run) for d in whole.values()] == [("smtp (dry run)", True), ("dry run", True)]


def test_what_an_email_says() -> None:
    smtp, sms = ChannelDelivery("email", "smtp", False), ChannelDelivery("sms", "dry run", True)
    assert email_facts([smtp]) is None
    assert email_facts([smtp, sms]) == {
        "label": "dry run on sms",
        "detail": "nothing is sent, messages are written to a local file there",
        "live": "email over smtp",
    }
    assert email_facts([ChannelDelivery("email", "", False), sms])["live"] == "email"  # type: ignore[index]
    assert email_facts([sms]) == {
        "label": "dry run",
        "detail": "nothing is sent, messages are written to a local file on every channel",
        "live": "",
    }
