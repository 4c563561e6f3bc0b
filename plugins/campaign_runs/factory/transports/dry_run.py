"""Dry runs: every channel's messages written to a local JSON-lines file instead of being sent."""

from __future__ import annotations

import datetime as dt
import json
import os
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from campaign_runs.factory.channels import ChannelAdapter, EmailAdapter, render
from campaign_runs.factory.unsubscribe import PLACEHOLDER as UNSUBSCRIBE_URL
from campaign_runs.factory.unsubscribe import UnsubscribeLinks

if TYPE_CHECKING:
    from campaign_runs.factory.audience import Recipient

DRY_RUN = "dry_run"


class SinkAdapter(ChannelAdapter):
    """A dry run: each message is written to the local JSON-lines sink ``<sink_dir>/<campaign>/<channel>.jsonl``."""

    transport = DRY_RUN

    @abstractmethod
    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """The message content for one recipient."""

    @property
    def path(self) -> Path:
        """The sink file of this campaign and channel."""
        return self.context.sink_dir / self.context.campaign / f"{self.context.channel}.jsonl"

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """The sink file, opened for appending and synced to disk on exit."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as sink:
            try:
                yield sink
            finally:
                sink.flush()
                os.fsync(sink.fileno())

    def check(self) -> str:
        """Nothing to try: a dry run sends nothing."""
        return f"dry run: nothing is sent, messages are written to {self.context.channel}.jsonl"

    def send_one(self, connection: Any, recipient: Recipient) -> bool:
        """Append one line, handed to the OS at once (it survives the process being killed)."""
        record = {
            "campaign": self.context.campaign,
            "run_id": self.context.run_id,
            "channel": self.context.channel,
            "recipient": recipient.id,
            "to": self.address(recipient),
            "sent_at": dt.datetime.now(dt.UTC).isoformat(),
            **self.payload(self.values(recipient)),
        }
        connection.write(json.dumps(record, ensure_ascii=False) + "\n")
        connection.flush()
        return True


class SmsAdapter(SinkAdapter):
    """SMS to the recipient's phone number: the channel's settings, and its dry run."""

    name = "sms"
    transport = DRY_RUN
    address_field = "phone"
    required_settings = ("text",)
    optional_settings: ClassVar[dict[str, Any]] = {"sender": "CAMPAIGN"}
    one_line_settings = frozenset({"sender"})

    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """Sender and text."""
        return {"sender": self.context.settings["sender"], "text": render(self.context.settings["text"], values)}


class PushAdapter(SinkAdapter):
    """Push notification to the recipient's device token: the channel's settings, and its dry run."""

    name = "push"
    transport = DRY_RUN
    address_field = "push_token"
    required_settings = ("title", "body")
    optional_settings: ClassVar[dict[str, Any]] = {"deep_link": ""}
    one_line_settings = frozenset({"title", "deep_link"})

    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """Title, body and optional deep link."""
        return {key: render(str(self.context.settings[key]), values) for key in ("title", "body", "deep_link")}


class DryRunEmailAdapter(SinkAdapter):
    """Email as a dry run: subject and body as they would be sent, with the recipient's unsubscribe link."""

    name = EmailAdapter.name
    address_field = EmailAdapter.address_field
    required_settings = EmailAdapter.required_settings
    optional_settings = EmailAdapter.optional_settings
    one_line_settings = EmailAdapter.one_line_settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unsubscribe = UnsubscribeLinks.from_config(fallback_mailto="campaigns@localhost")

    def payload(self, values: dict[str, Any]) -> dict[str, Any]:
        """Subject and body, rendered."""
        settings = self.context.settings
        return {key: render(str(settings[key]), values) for key in ("subject", "body")}

    def values(self, recipient: Recipient) -> dict[str, Any]:
        """The recipient's values and their own unsubscribe link."""
        url, _ = self.unsubscribe.for_recipient(self.context.campaign, recipient.email)
        return {**super().values(recipient), UNSUBSCRIBE_URL: url}
