"""The transports benchmark's plain SMTP and SES loops send what the email channel sends: same headers, same size."""

from __future__ import annotations

import secrets
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from benchmarks import transports
from tests.support.rigs import smtp


def test_the_plain_email_has_the_channels_headers_and_size(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__UNSUBSCRIBE_SECRET", secrets.token_hex(16))
    raw: list[bytes] = []
    record = smtp._Handler.handle_DATA

    async def keep(self: Any, server: Any, session: Any, envelope: Any) -> str:
        raw.append(envelope.original_content)
        return await record(self, server, session, envelope)

    monkeypatch.setattr(smtp._Handler, "handle_DATA", keep)
    with smtp.rig(monkeypatch) as rig:
        view = transports.view_of(rig)
        transports.ours(view, 3, 1, tmp_path, "r1")
        transports.plain("smtp", view, 3, 1)
    ours, plain = raw[:3], raw[3:]
    assert [list(message_from_bytes(m).keys()) for m in plain] == [list(message_from_bytes(m).keys()) for m in ours]
    for mine, theirs in zip(ours, plain, strict=True):
        assert abs(len(theirs) - len(mine)) <= len(mine) // 10, (len(mine), len(theirs))
