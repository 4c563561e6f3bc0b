"""Restart's params overrides through both page hosts: FAB's ``/pluginsv2`` views and the plugin's own ``/ui`` pages.

The same form field, read by the same function (``pages.definition_form.parse_params``): an object overrides the run's
params, anything else is refused with its reason and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from campaign_runs.tables import run_action

from tests.campaign_runs.core.helpers import count
from tests.campaign_runs.pages.asgi.hosts import Host
from tests.campaign_runs.pages.fab.test_campaigns import csrf_token, flashes, text


def restart(host: Host, run_id: str, params: str) -> Any:
    """Post the run page's Restart form as a browser does, with ``params`` in its overrides box."""
    client = host.login(host.app, "alice")
    page = client.get(host.run_url(run_id))
    assert page.status_code == 200, page.text[:300]
    assert re.search(r'<form class="cr-action cr-restart".*?name="params"', page.text, re.S)
    fields = {"note": "Fixed the list", "params": params, "csrf_token": csrf_token(page.text)}
    return client.post(f"{host.run_url(run_id)}/restart", data=fields)


def restart_confs() -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(
            select(DagRun.conf).where(DagRun.dag_id == "cr_campaign", DagRun.run_id.startswith("restart__"))
        )
        return [dict(conf or {}) for conf in found]


def test_restart_runs_with_the_params_typed_in_its_form(host: Host, make_run: Callable[..., str]) -> None:
    run_id = make_run("cr_campaign", state="failed")

    response = restart(host, run_id, '{"audience_size": 5}')

    assert response.status_code == 303, text(response)[:300]
    confs = restart_confs()
    assert len(confs) == 1 and confs[0]["audience_size"] == 5 and confs[0]["campaign_restart_of"] == run_id


@pytest.mark.parametrize(
    ("params", "words"),
    [("{audience_size: 5}", "is not valid JSON"), ("[5]", "must be a JSON object"), ("{", "is not valid JSON")],
)
def test_params_that_are_not_a_json_object_are_refused_and_nothing_happens(
    host: Host, make_run: Callable[..., str], params: str, words: str
) -> None:
    run_id = make_run("cr_campaign", state="failed")

    response = restart(host, run_id, params)

    assert response.status_code == 422
    assert words in " ".join(flashes(response))
    kept = re.search(r'name="params" value="([^"]*)"', response.text)
    assert kept is not None and unescape(kept.group(1)) == params  # what was typed stays in the box
    assert restart_confs() == [] and count(run_action) == 0
