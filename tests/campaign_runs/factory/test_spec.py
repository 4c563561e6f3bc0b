"""The YAML schema: valid declarations and clear errors naming the file and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.factory.spec import CampaignSpecError, load_spec

from tests.dags.conftest import CAMPAIGNS

MINIMAL: dict[str, Any] = {
    "id": "mini",
    "description": "A minimal campaign.",
    "owner": "ops",
    "owner_email": "ops@example.com",
    "schedule": {"cron": "@daily", "start_date": "2025-01-01"},
    "audience": {"segment": "everyone", "size": 10, "population": 100},
    "channels": {"sms": {"text": "Hi $first_name"}},
}


def write(tmp_path: Path, data: Any) -> Path:
    """Write ``data`` as a YAML campaign file."""
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def broken(**changes: Any) -> dict[str, Any]:
    """The minimal campaign with nested changes (dotted keys), ``None`` deleting a key."""
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for parent in parents:
            node = node[parent]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


def test_shipped_campaigns_parse() -> None:
    """The three shipped campaigns differ in schedule and channels."""
    newsletter = load_spec(CAMPAIGNS / "weekly_newsletter.yaml")
    assert newsletter.schedule.expression == "0 9 * * MON"
    assert newsletter.schedule.timezone == "Europe/Paris"
    assert newsletter.schedule.start_date == dt.datetime(2025, 1, 6, tzinfo=newsletter.schedule.start_date.tzinfo)
    assert [c.name for c in newsletter.channels] == ["email", "push"]
    cart = load_spec(CAMPAIGNS / "cart_abandonment.yaml")
    assert cart.schedule.expression == "@hourly"
    assert cart.audience.rotate_per_slot is True
    assert cart.channel("sms").rate_limit_per_second == 500.0
    flash = load_spec(CAMPAIGNS / "flash_sale.yaml")
    assert flash.schedule.expression is None
    assert {c.name for c in flash.channels} == {"email", "sms", "push"}


def test_shipped_campaigns_send_email_over_smtp_and_sms_and_push_as_dry_runs() -> None:
    """Email is live over SMTP (make run's mail sink, compose's Mailpit); SMS and push say ``delivery: dry_run``."""
    for path in sorted(CAMPAIGNS.glob("*.yaml")):
        campaign = load_spec(path)
        shown = {c.name: (c.transport, c.delivery, c.dry_run, c.delivery_label) for c in campaign.channels}
        assert shown.pop("email") == ("smtp", "live", False, "smtp"), path.name
        assert shown and set(shown) <= {"sms", "push"}, path.name
        assert set(shown.values()) == {("dry_run", "dry_run", True, "dry run")}, path.name
        assert campaign.delivery == "live" and not campaign.dry_run
        text = path.read_text()
        assert text.count("    delivery: dry_run\n") == len(shown), path.name  # said in the file, not defaulted
        switches = {"push": ["fcm"], "sms": ["sns", "twilio"]}  # how to send for real, shown commented out
        assert all(f"#   transport: {name}" in text for channel in shown for name in switches[channel]), path.name


def test_minimal_defaults(tmp_path: Path) -> None:
    """Omitted optional fields take documented defaults."""
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.schedule.timezone == "UTC"
    assert spec.schedule.catchup is False
    sms = spec.channel("sms")
    assert (sms.batch_size, sms.rate_limit_per_second) == (500, 0.0)
    assert sms.settings == {"text": "Hi $first_name", "sender": "CAMPAIGN"}


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        (broken(id=None), "id", "is required"),
        (broken(owner_email="not-an-email"), "owner_email", "is not an email address"),
        (broken(schedule__cron="0 25 * * *"), "schedule.cron", "not a valid five-field cron"),
        (broken(schedule__cron=None), "schedule.cron", "is required"),
        (broken(schedule__timezone="Mars/Olympus"), "schedule.timezone", "unknown timezone"),
        (broken(schedule__start_date="yesterday"), "schedule.start_date", "not an ISO 8601 date"),
        (broken(audience__size=1000), "audience.size", "larger than the population"),
        (broken(audience__segment="has space"), "audience.segment", "does not match"),
        (broken(channels={"fax": {}}), "channels.fax", "unknown channel"),
        (broken(channels__sms__text=None), "channels.sms.text", "is required"),
        (broken(channels__sms__batch_size=0), "channels.sms.batch_size", "at least 1"),
        (broken(channels__sms__rate_limit_per_second=-1), "channels.sms.rate_limit_per_second", ">= 0"),
        (broken(channels__sms__colour="red"), "channels.sms.colour", "unknown field"),
        (broken(chanels={}), "chanels", "unknown field"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, data: dict[str, Any], field: str, fragment: str) -> None:
    """Every validation error names the YAML file and the dotted field."""
    path = write(tmp_path, data)
    with pytest.raises(CampaignSpecError) as caught:
        load_spec(path)
    assert caught.value.field_name == field
    assert str(caught.value).startswith(f"Campaign file {path}: field '{field}': ")
    assert fragment in str(caught.value)


def test_manual_schedule_with_explicit_null(tmp_path: Path) -> None:
    """``cron: null`` means triggered by hand."""
    assert load_spec(write(tmp_path, broken(schedule__cron="manual"))).schedule.expression is None
    text = yaml.safe_dump(MINIMAL).replace("cron: '@daily'", "cron: null")
    assert load_spec(write(tmp_path, text)).schedule.expression is None


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    """Syntax errors and missing files name the file."""
    path = write(tmp_path, "id: [unclosed\n")
    with pytest.raises(CampaignSpecError, match=r"campaign\.yaml: file: invalid YAML"):
        load_spec(path)
    with pytest.raises(CampaignSpecError, match="campaign file not found"):
        load_spec(tmp_path / "absent.yaml")


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_multi_line_template_may_hold_line_ends_and_tabs(tmp_path: Path, line_end: str) -> None:
    """A browser's textarea sends CRLF: a body with it is a body, not a control character."""
    data = broken(channels={"email": {"subject": "Hi", "body": f"Hello{line_end}\tworld{line_end}"}})
    assert load_spec(write(tmp_path, data)).channel("email").settings["body"] == f"Hello{line_end}\tworld"


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "Hi\r\nBcc: x@example.com"), ("subject", "Hi\nthere"), ("body", "Hello\rworld"), ("body", "a\x00b")],
)
def test_control_characters_are_refused_where_they_do_not_belong(tmp_path: Path, field: str, value: str) -> None:
    settings = {"subject": "Hi", "body": "Hello"} | {field: value}
    with pytest.raises(CampaignSpecError, match=f"field 'channels.email.{field}': contains the control character"):
        load_spec(write(tmp_path, broken(channels={"email": settings})))
