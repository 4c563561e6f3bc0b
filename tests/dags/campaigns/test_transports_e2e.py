"""Every transport under the real scheduler: one campaign whose channels go out over SES, Twilio, FCM and a webhook.

The providers are the transport tests' local stand-ins (moto's server behind a checking front, small HTTP servers
that check each request as the provider documents it); their Connections are in the environment of the
api-server, dag-processor, scheduler and the task processes, as a deployment's secrets backend would give them.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.support import running_stack
from tests.dags.campaigns.runs import trigger, wait_for_dag, wait_run_done, xcoms
from tests.support.airflow_env import REPO
from tests.support.fixtures import start_smtp
from tests.support.processes import AirflowStack
from tests.support.rigs import fcm, ses, twilio, webhook

pytestmark = pytest.mark.slow

DAG_ID = "cr_every_transport"
SIZE = 12


@dataclass
class Rigs:
    """The running stand-ins, by channel."""

    by_channel: dict[str, Any]
    stack: AirflowStack


def definition(rigs: dict[str, Any]) -> str:
    """The campaign: each channel on its rig's transport and Connection (YAML flow style, written as JSON)."""
    channels = {
        channel: {**rig.settings, "transport": rig.transport, "conn_id": rig.conn_id, "batch_size": 5}
        for channel, rig in rigs.items()
    }
    document = {
        "id": DAG_ID,
        "description": "Every transport under the scheduler.",
        "owner": "alice",
        "owner_email": "alice@example.com",
        "schedule": {"cron": None, "timezone": "UTC", "start_date": "2025-01-01"},
        "audience": {"segment": "transports", "size": SIZE, "population": 1000},
        "channels": channels,
    }
    return json.dumps(document, indent=2) + "\n"


@pytest.fixture(scope="module")
def rigs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rigs]:
    with ExitStack() as stack, pytest.MonkeyPatch.context() as monkeypatch:
        running = {
            "email": stack.enter_context(ses.rig(monkeypatch)),
            "sms": stack.enter_context(twilio.rig(monkeypatch)),
            "push": stack.enter_context(fcm.rig(monkeypatch)),
            "webhook": stack.enter_context(webhook.rig(monkeypatch)),
        }
        dags = tmp_path_factory.mktemp("transports-e2e") / "dags"
        dags.mkdir()
        shutil.copyfile(REPO / "dags" / "campaigns" / "campaigns.py", dags / "campaigns.py")
        (dags / f"{DAG_ID}.yaml").write_text(definition(running))
        controller, sink = start_smtp()
        stack.callback(controller.stop)
        airflow = stack.enter_context(running_stack(sink.port, dags.parent, dags))
        wait_for_dag(DAG_ID, airflow, timeout=180)
        yield Rigs(running, airflow)


def test_a_run_reaches_each_recipient_once_on_every_transport(rigs: Rigs) -> None:
    run_id = trigger(DAG_ID, {}, run_id="manual__every_transport")
    state = wait_run_done(DAG_ID, run_id, timeout=240)
    assert state == "success", rigs.stack.logs()
    progress = {task: value for (task, key), value in xcoms(DAG_ID, run_id).items() if key == "campaign_progress"}
    for channel, rig in rigs.by_channel.items():
        sent = progress[f"send_{channel}"]
        accepted = Counter(rig.accepted())
        assert sent["sent"] == sent["total"] == len(accepted) > 0, (channel, sent)
        assert max(accepted.values()) == 1, channel
    assert len({progress[f"send_{channel}"]["total"] for channel in rigs.by_channel}) == 1
