"""Every error of a definition at once, beside each field: core, New page, REST API and ``validate`` (issue 25, 6)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from campaign_runs.core import definition_text
from campaign_runs.domain import DefinitionErrors
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import HOSTILE
from tests.campaign_runs.pages.fab.test_definitions import FORM, NEW, field_error, folder, post, users  # noqa: F401
from tests.support.definitions import valid_definition
from tests.support.fixtures import PASSWORD

FOUR = {  # the four mistakes: a bad cron, a bad timezone, a rate of 0, an unknown placeholder
    "schedule.cron": "'61 9 * * MON' is not a valid five-field cron expression or preset",
    "schedule.timezone": "unknown timezone 'Mars/Olympus'",
    "channels.email.rate_limit_per_second": "must be more than 0 messages per second, got 0",
    "channels.email.body": "unknown placeholder $voucher",
}


def four_mistakes(dag_id: str) -> str:
    return (
        valid_definition(dag_id)
        .replace('"0 9 * * MON"', '"61 9 * * MON"')
        .replace("Europe/Paris", "Mars/Olympus")
        .replace("batch_size: 25", "batch_size: 25\n    rate_limit_per_second: 0")
        .replace("$first_name, your", "$first_name, your $voucher")
    )


def test_the_core_names_every_error_once() -> None:
    with pytest.raises(DefinitionErrors) as raised:
        definition_text.validate_text(four_mistakes("cr_four"))
    found = dict(raised.value.errors)
    assert set(found) == set(FOUR) and len(raised.value.errors) == 4
    for field, words in FOUR.items():
        assert words in found[field], (field, found[field])
    assert all(f"{field}: " in str(raised.value) for field in FOUR)  # one line naming them all (the CLI's)


def test_a_valid_definition_and_a_single_error_are_as_before() -> None:
    assert definition_text.validate_text(valid_definition("cr_fine"))[0] == "cr_fine"
    with pytest.raises(DefinitionErrors) as raised:
        definition_text.validate_text(valid_definition("cr_one").replace("Europe/Paris", "Mars/Olympus"))
    assert raised.value.errors == [("schedule.timezone", "unknown timezone 'Mars/Olympus'")]
    assert (raised.value.field, raised.value.reason) == ("schedule.timezone", "unknown timezone 'Mars/Olympus'")


def test_new_shows_every_error_beside_its_field_and_writes_nothing(
    folder: Path,  # noqa: F811
    users: Callable[[str], TestClient],  # noqa: F811
) -> None:
    """The four of the issue, and what the form itself cannot read (a batch size, a date), each beside its field."""
    change = {
        "schedule.cron": "61 9 * * MON",
        "schedule.timezone": "Mars/Olympus",
        "channels.email.rate_limit_per_second": "0",
        "channels.email.body": "Hi $voucher",
        "channels.email.batch_size": "ten",
        "schedule.start_date": "2026-13-01",
        "description": HOSTILE,
    }
    response = post(users("alice"), NEW, {**FORM, **change})
    assert response.status_code == 422
    shown = {
        "schedule.cron": "is not a valid five-field cron expression",
        "schedule.timezone": "unknown timezone 'Mars/Olympus'",
        "channels.email.rate_limit_per_second": "more than 0",
        "channels.email.body": "unknown placeholder $voucher",
        "channels.email.batch_size": "must be a whole number, not 'ten'",
        "schedule.start_date": "is not a date such as 2026-01-05",
    }
    for slot, words in shown.items():
        assert words in field_error(response, slot), (slot, field_error(response, slot))
    assert HOSTILE not in response.text
    assert list(folder.iterdir()) == []


@pytest.fixture
def api(api_app: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    client = TestClient(api_app)
    token = client.post("/auth/token", json={"username": "alice", "password": PASSWORD}).json()["access_token"]
    yield client, {"Authorization": f"Bearer {token}"}
    client.close()


@pytest.mark.parametrize("route", ["/campaign-runs/definitions/validate", "/campaign-runs/campaigns"])
def test_the_rest_api_lists_every_error_with_its_field(
    api: tuple[TestClient, dict[str, str]],
    folder: Path,  # noqa: F811
    route: str,
) -> None:
    client, headers = api
    body = {"yaml": four_mistakes("cr_four_api"), **({"note": "x"} if route.endswith("/campaigns") else {})}
    answer = client.post(route, json=body, headers=headers)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "invalid_definition"
    errors = {error["field"]: error["message"] for error in body["errors"]}
    assert set(errors) == set(FOUR) and body["field"] == body["errors"][0]["field"]
    for field, words in FOUR.items():
        assert words in errors[field] and f"{field}: " in body["detail"]
    assert list(folder.iterdir()) == []


def test_validate_on_the_command_line_names_every_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    folder: Path,  # noqa: F811
) -> None:
    from tests.campaign_runs.cli.test_definitions import fails

    path = tmp_path / "cr_four_cli.yaml"
    path.write_text(four_mistakes("cr_four_cli"))
    message = fails(capsys, "validate", "--file", str(path))
    for field, words in FOUR.items():
        assert f"{field}: " in message and words in message
