"""REST API: Idempotency-Key bound to its request (422 on reuse, expiry), the outbox's resend route, run emails."""

# ruff: noqa: F811  (pytest fixtures imported from test_api)
from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from tests.campaign_runs.api.test_runs import PREFIX, actions_of, admin, alice, client, problem, run_status  # noqa: F401
from tests.support.fixtures import outbox_rows


def test_an_idempotency_key_is_bound_to_its_request(client: TestClient, admin: dict[str, str], make_run: Any) -> None:
    from airflow.utils.session import create_session
    from campaign_runs.domain import utcnow
    from campaign_runs.tables import run_action

    first_run = make_run("cr_campaign", state="failed")
    other_run = make_run("cr_campaign", state="failed")
    base = f"{PREFIX}/campaigns/cr_campaign/runs"
    key = {**admin, "Idempotency-Key": "api-key-1"}

    done = client.post(f"{base}/{first_run}/skip", json={"note": "Not worth it"}, headers=key)
    assert done.status_code == 200, done.text
    same = client.post(f"{base}/{first_run}/skip", json={"note": "Not worth it"}, headers=key)
    assert same.status_code == 200 and same.json() == {**done.json(), "replayed": True}

    problem(
        client.post(f"{base}/{other_run}/skip", json={"note": "Not worth it"}, headers=key),
        422,
        "idempotency_key_reused",
        "'api-key-1'",
    )
    assert run_status("cr_campaign", other_run) == "failed" and actions_of("cr_campaign", other_run) == []
    problem(
        client.post(f"{base}/{first_run}/skip", json={"note": "Another note"}, headers=key),
        422,
        "idempotency_key_reused",
        "'api-key-1'",
    )
    problem(
        client.post(f"{base}/{first_run}/restart", json={"note": "Not worth it"}, headers=key),
        422,
        "idempotency_key_reused",
        "'api-key-1'",
    )
    assert len(actions_of("cr_campaign", first_run)) == 1

    with create_session() as session:  # the key's first use is older than idempotency_key_ttl_hours (24)
        session.execute(update(run_action).values(created_at=utcnow() - timedelta(hours=25)))
    fresh = client.post(f"{base}/{other_run}/skip", json={"note": "Not worth it"}, headers=key)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["replayed"] is False and fresh.json()["run_id"] == other_run
    assert run_status("cr_campaign", other_run) == "skipped"
    assert [a["idempotency_key"] for a in actions_of("cr_campaign", first_run)] == [None]
    assert [a["idempotency_key"] for a in actions_of("cr_campaign", other_run)] == ["api-key-1"]

    schema = client.get(f"{PREFIX}/openapi.json").json()
    header = next(
        p
        for p in schema["paths"]["/campaigns/{dag_id}/runs/{run_id}/skip"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    )
    assert "idempotency_key_ttl_hours" in header["description"] and "422" in header["description"]


def test_resend_a_failed_email(
    client: TestClient, admin: dict[str, str], alice: dict[str, str], make_run: Any, smtp_server: Any
) -> None:
    from airflow.utils.session import create_session
    from campaign_runs import core
    from campaign_runs.tables import email_outbox

    run_id = make_run("cr_campaign", state="failed")
    core.skip_run("cr_campaign", run_id, actor="alice", note="Skip it")
    assert core.wait_for_deliveries(30)
    smtp_server.wait_for(1)
    [row] = outbox_rows()
    url = f"{PREFIX}/emails/{row['id']}/resend"
    problem(client.post(url, headers=admin), 409, "conflict", "only failed or undeliverable")
    with create_session() as session:  # as the delivery leaves it after its last failed attempt
        session.execute(update(email_outbox).values(status="failed", attempts=10, last_error="SMTPRecipientsRefused"))

    details = client.get(f"{PREFIX}/campaigns/cr_campaign/runs/{run_id}", headers=admin).json()
    assert [(e["id"], e["status"], e["recipient"], e["attempts"], e["last_error"]) for e in details["emails"]] == [
        (row["id"], "failed", "alice@example.com", 10, "SMTPRecipientsRefused")
    ]
    listed = client.get(f"{PREFIX}/campaigns", headers=admin).json()["campaigns"]
    assert next(c for c in listed if c["id"] == "cr_campaign")["failed_emails"] == 1

    problem(client.post(url, headers=alice), 403, "forbidden", "administrators")
    problem(client.post(f"{PREFIX}/emails/999999/resend", headers=admin), 404, "not_found", "999999")
    problem(client.post(f"{PREFIX}/emails/0/resend", headers=admin), 422, "invalid_request")
    resent = client.post(url, headers=admin)
    assert resent.status_code == 200, resent.text
    assert (resent.json()["status"], resent.json()["attempts"]) == ("pending", 0)
    assert core.wait_for_deliveries(30)
    messages = smtp_server.wait_for(2)
    assert [m["Message-ID"] for m in messages] == [row["message_id"]] * 2
    assert [(r["status"], r["attempts"]) for r in outbox_rows()] == [("sent", 1)]
    assert [a["action"] for a in actions_of("cr_campaign", run_id)] == ["skip", "resend_email"]
    assert "/emails/{outbox_id}/resend" in client.get(f"{PREFIX}/openapi.json").json()["paths"]
