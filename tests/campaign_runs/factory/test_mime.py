"""The compiled campaign email: no setting or value can add a header."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from campaign_runs.factory.mime import MessageTemplate, smtp_path


def template(**changes: str) -> MessageTemplate:
    values = {"mail_from": "shop@example.com", "from_name": "Shop", "reply_to": "help@example.com"} | changes
    return MessageTemplate(subject="Hi $first_name", body="Hello", headers={"X-Campaign-Id": "c1"}, **values)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("from_name", "Shop\r\nBcc: all@example.com"),
        ("from_name", "Shop\nBcc: all@example.com"),
        ("reply_to", "help@example.com\r\nBcc: all@example.com"),
        ("mail_from", "shop@example.com\nBcc: all@example.com"),
    ],
)
def test_a_control_character_in_a_constant_header_is_refused_when_building(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        template(**{field: value})


def test_recipient_values_never_start_a_header() -> None:
    message = template().render("bob@example.com", {"first_name": "Bob\r\nBcc: all@example.com"}, {})
    parsed = message_from_bytes(message, policy=default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hi Bob Bcc: all@example.com"
    assert parsed["From"] == "Shop <shop@example.com>"


def test_an_address_with_a_line_break_never_becomes_a_plain_smtp_path() -> None:
    assert smtp_path("bob@example.com") == "<bob@example.com>"
    assert "\n" not in smtp_path("bob@example.com\n")
