"""New, Configure and the campaign actions under SimpleAuthManager: the plugin's own pages serve them as FAB does.

The same page code (``pages.definitions``, ``pages.trials``, ``pages.actions``) behind both hosts: the same
templates, fields, permission rule and statuses (403 a refused user, 404 an unknown id, 400 bad input, 409 a
conflict), a signed CSRF token on every POST. Some tests run the same page on both hosts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from campaign_runs.core import definitions
from campaign_runs.pages import definition_form
from campaign_runs.tables import campaign_event
from starlette.testclient import TestClient

from tests.campaign_runs.pages.asgi.hosts import FAB_BASE, UI, Host, simple_only
from tests.campaign_runs.pages.fab.test_campaigns import HOSTILE, count, csrf_token, dag_run_count, flashes, is_paused
from tests.campaign_runs.pages.fab.test_campaigns import text as words
from tests.campaign_runs.pages.fab.test_definitions import (  # noqa: F401  (fixtures)
    FORM,
    create,
    field_error,
    folder,
    input_value,
    keep_schedules,
)


def post(client: TestClient, url: str, data: dict[str, str], *, token: bool = True) -> Any:
    """Submit a form as the browser does, with the CSRF token of the campaigns page of the same host."""
    fields = dict(data)
    if token:
        base = UI if url.startswith(UI) else FAB_BASE
        fields["csrf_token"] = csrf_token(client.get(f"{base}/list").text)
    return client.post(url, data=fields)


ERRORS_AT_ONCE = {
    "schedule.timezone": ("Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
    "channels.email.batch_size": ("0", "must be at least 1, got 0"),
    "owner_email": ("nobody", "is not an email address"),
}


# ------------------------------------------------------------------ both hosts


def test_every_error_of_a_new_campaign_is_beside_its_field_on_both_hosts(host: Host, folder: Path) -> None:  # noqa: F811
    bad = {name: value for name, (value, _) in ERRORS_AT_ONCE.items()}

    response = post(host.client(), f"{host.base}/new", {**FORM, **bad, "description": HOSTILE})

    assert response.status_code == 422, words(response)[:300]
    for name, (_, reason) in ERRORS_AT_ONCE.items():
        assert reason in field_error(response, name), name
    assert HOSTILE not in response.text and input_value(response, "description") == HOSTILE
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0


def test_a_new_campaign_is_saved_and_paused_on_both_hosts(host: Host, folder: Path) -> None:  # noqa: F811
    client = host.client()

    saved = post(client, f"{host.base}/new", FORM)

    assert (saved.status_code, saved.headers["location"]) == (303, f"{host.base}/list"), words(saved)[:300]
    assert yaml.safe_load((folder / "cr_ui_campaign.yaml").read_text())["audience"]["size"] == 50
    [entry] = definitions.history("cr_ui_campaign")
    assert (entry.kind, entry.actor, entry.note) == ("created", host.creator, "Spring")
    assert "cr_ui_campaign: Saved; waiting for Airflow to load it." in flashes(client.get(saved.headers["location"]))
    paused = post(client, f"{host.base}/display/cr_campaign/actions/pause", {"note": "Holidays"})
    assert (paused.status_code, paused.headers["location"]) == (303, f"{host.base}/display/cr_campaign")
    assert is_paused("cr_campaign") and "Paused cr_campaign." in flashes(client.get(paused.headers["location"]))


# ------------------------------------------------------------------ New


@simple_only
def test_new_is_offered_to_who_may_create_with_its_script_and_preview(host: Host, folder: Path) -> None:  # noqa: F811
    admin, alice = host.client("admin"), host.client("alice")
    assert f'id="cr-new-campaign" href="{UI}/new"' in admin.get(f"{UI}/list").text
    assert 'id="cr-new-campaign"' not in alice.get(f"{UI}/list").text

    page = admin.get(f"{UI}/new")

    assert page.status_code == 200, words(page)[:300]
    assert f'action="{UI}/new"' in page.text and f'formaction="{UI}/new/audience"' in page.text
    assert f'data-preview-url="{UI}/new/preview.json"' in page.text
    script = admin.get(f"{UI}/new/static/definition_form.js")
    assert f'src="{UI}/new/static/definition_form.js"' in page.text and script.status_code == 200
    assert admin.get(f"{UI}/new/static/chart.umd.min.js").status_code == 404
    shown = admin.get(f"{UI}/new/preview.json", params={"mode": "cron", "cron": "0 9 * * MON", "timezone": "UTC"})
    assert shown.status_code == 200 and shown.json()["description"] == "At 09:00, only on Monday"
    bad = admin.get(f"{UI}/new/preview.json", params={"mode": "cron", "cron": "61 9 * * *"})
    assert bad.status_code == 422 and bad.json()["field"] == "schedule.cron"


@simple_only
def test_new_without_the_csrf_token_or_with_another_users_is_refused(host: Host, folder: Path) -> None:  # noqa: F811
    admin = host.client("admin")

    missing = post(admin, f"{UI}/new", FORM, token=False)
    alices = csrf_token(host.client("alice").get(f"{UI}/list").text)
    foreign = admin.post(f"{UI}/new", data={**FORM, "csrf_token": alices})

    for refused in (missing, foreign):
        assert refused.status_code == 400 and "The CSRF token is missing or wrong" in words(refused)
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0


@simple_only
def test_who_may_not_create_campaigns_gets_403_and_nothing_is_written(host: Host, folder: Path) -> None:  # noqa: F811
    for username in ("alice", "viewer"):
        client = host.client(username)
        assert client.get(f"{UI}/new").status_code == 403
        refused = post(client, f"{UI}/new", FORM)
        assert refused.status_code == 403 and "You may not create campaigns" in " ".join(flashes(refused))
        assert post(client, f"{UI}/new/audience", FORM).status_code == 403
    anonymous = TestClient(host.app, follow_redirects=False)
    assert anonymous.get(f"{UI}/new").headers["location"].startswith("/auth/login?next=")
    assert anonymous.post(f"{UI}/new", data=FORM).status_code == 401
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0


@simple_only
def test_new_previews_its_audience_and_saves_nothing(host: Host, folder: Path) -> None:  # noqa: F811
    response = post(host.client("admin"), f"{UI}/new/audience", {**FORM, "audience.size": "7"})

    assert response.status_code == 200, words(response)[:300]
    shown = re.search(r'<section id="cr-audience-preview".*?</section>', response.text, re.S)
    assert shown and 'data-count="7"' in shown.group(0) and len(re.findall(r"<tr data-position=", shown.group(0))) == 7
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------------ Configure


def configure_url(dag_id: str = "cr_ui_campaign") -> str:
    return f"{UI}/display/{dag_id}/configure"


@simple_only
def test_configure_prefills_saves_a_version_and_links_back(host: Host, folder: Path) -> None:  # noqa: F811
    first = create(folder)
    admin = host.client("admin")

    page = admin.get(configure_url())

    assert page.status_code == 200, words(page)[:300]
    assert input_value(page, "schedule.cron") == "0 9 * * MON" and input_value(page, "base_sha") == first.sha
    assert f'formaction="{configure_url()}/check"' in page.text
    saved = post(admin, configure_url(), {**FORM, "schedule.cron": "0 10 * * TUE", "base_sha": first.sha})
    assert (saved.status_code, saved.headers["location"]) == (303, f"{UI}/display/cr_ui_campaign")
    assert "0 10 * * TUE" in (folder / "cr_ui_campaign.yaml").read_text()
    assert [(e.version, e.actor) for e in definitions.history("cr_ui_campaign")] == [(2, "admin"), (1, "alice")]


@simple_only
def test_a_stale_save_gets_409_with_the_merge_and_the_merged_version_saves(host: Host, folder: Path) -> None:  # noqa: F811
    first = create(folder)
    admin = host.client("admin")
    theirs = {**FORM, "schedule.cron": "0 10 * * TUE", "base_sha": first.sha}
    assert post(admin, configure_url(), theirs).status_code == 303

    stale = post(admin, configure_url(), {**FORM, "audience.size": "70", "base_sha": first.sha})

    assert stale.status_code == 409, words(stale)[:300]
    assert 'id="cr-conflict"' in stale.text or "merging your changes" in words(stale)
    assert input_value(stale, "audience.size") == "70" and input_value(stale, "schedule.cron") == "0 10 * * TUE"
    newest = definitions.definition_of("cr_ui_campaign").sha
    assert input_value(stale, "base_sha") == newest
    assert [e.version for e in definitions.history("cr_ui_campaign")] == [2, 1]
    merged = {**definition_form.form_of(yaml.safe_load((folder / "cr_ui_campaign.yaml").read_text()))}
    saved = post(admin, configure_url(), {**merged, "audience.size": "70", "base_sha": newest or "", "note": "m"})
    assert saved.status_code == 303, words(saved)[:300]
    data = yaml.safe_load((folder / "cr_ui_campaign.yaml").read_text())
    assert data["schedule"]["cron"] == "0 10 * * TUE" and data["audience"]["size"] == 70


@simple_only
def test_configure_previews_its_audience_and_checks_connections_without_saving(host: Host, folder: Path) -> None:  # noqa: F811
    first = create(folder)
    admin = host.client("admin")
    form = {**definition_form.form_of(yaml.safe_load(first.text)), "base_sha": first.sha, "audience.size": "3"}

    preview = post(admin, f"{configure_url()}/audience", form)
    checked = post(admin, f"{configure_url()}/check", form)

    assert preview.status_code == 200 and 'data-count="3"' in preview.text, words(preview)[:300]
    assert checked.status_code == 200 and 'id="cr-trial-results"' in checked.text, words(checked)[:300]
    assert (folder / "cr_ui_campaign.yaml").read_text() == first.text
    assert [e.version for e in definitions.history("cr_ui_campaign")] == [1]


@simple_only
def test_who_may_not_configure_is_refused_configure_and_its_test_send(host: Host, folder: Path) -> None:  # noqa: F811
    first = create(folder)
    form = {**definition_form.form_of(yaml.safe_load(first.text)), "base_sha": first.sha, "trial.to": "a@b.c"}
    alice = host.client("alice")

    assert alice.get(configure_url()).status_code == 403
    sent = post(alice, f"{configure_url()}/test-send", form)
    saved = post(alice, configure_url(), {**form, "audience.size": "9"})

    assert sent.status_code == 403 and "You may not configure campaigns" in " ".join(flashes(sent))
    assert saved.status_code == 403 and (folder / "cr_ui_campaign.yaml").read_text() == first.text
    assert [e.kind for e in definitions.history("cr_ui_campaign")] == ["created"]  # no test send recorded
    assert host.client("admin").get(configure_url("cr_no_such")).status_code == 404


# ------------------------------------------------------------------ campaign actions


def action_url(action: str, dag_id: str = "cr_campaign") -> str:
    return f"{UI}/display/{dag_id}/actions/{action}"


@simple_only
def test_the_display_offers_configure_and_the_actions_to_who_may_use_them(host: Host, folder: Path) -> None:  # noqa: F811
    shown = host.client("admin").get(f"{UI}/display/cr_campaign").text
    assert f'id="cr-configure" href="{UI}/display/cr_campaign/configure"' in shown
    assert f'action="{action_url("pause")}"' in shown and f'action="{action_url("run_now")}"' in shown
    alice = host.client("alice").get(f"{UI}/display/cr_campaign").text  # may change runs, not configure
    assert 'id="cr-configure"' not in alice and f'action="{action_url("pause")}"' in alice
    viewer = host.client("viewer").get(f"{UI}/display/cr_campaign").text
    assert 'id="cr-campaign-actions"' not in viewer and 'id="cr-configure"' not in viewer


@simple_only
def test_pause_and_resume_with_a_note_and_their_refusals(host: Host, folder: Path) -> None:  # noqa: F811
    alice = host.client("alice")

    paused = post(alice, action_url("pause"), {"note": "Holidays"})
    again = post(alice, action_url("pause"), {"note": "twice"})
    bad = post(alice, action_url("resume"), {"note": "back", "missed": "some"})
    resumed = post(alice, action_url("resume"), {"note": "Back", "missed": "none"})

    assert paused.status_code == 303 and again.status_code == 409 and "already paused" in " ".join(flashes(again))
    assert bad.status_code == 400 and resumed.status_code == 303 and not is_paused("cr_campaign")
    assert [(e.kind, e.note) for e in definitions.history("cr_campaign")] == [("resume", "Back"), ("pause", "Holidays")]


@simple_only
def test_campaign_actions_are_refused_to_a_viewer_without_csrf_and_for_unknown_ids(host: Host, folder: Path) -> None:  # noqa: F811
    viewer, alice = host.client("viewer"), host.client("alice")

    refused = post(viewer, action_url("pause"), {"note": "x"})
    missing = post(alice, action_url("pause"), {"note": "x"}, token=False)
    unknown_action = post(alice, action_url("explode"), {"note": "x"})
    unknown_campaign = post(alice, action_url("pause", "cr_no_such"), {"note": "x"})

    assert refused.status_code == 403 and "You may not use Pause on campaign cr_campaign." in flashes(refused)
    assert missing.status_code == 400
    assert unknown_action.status_code == 404 and unknown_campaign.status_code == 404
    assert post(alice, action_url("stop_all"), {"note": "all"}).status_code == 409
    assert not is_paused("cr_campaign") and count(campaign_event) == 0


@simple_only
def test_run_now_starts_a_run_with_params_and_opens_its_page(host: Host, folder: Path) -> None:  # noqa: F811
    alice = host.client("alice")
    before = dag_run_count("cr_campaign")

    refused = post(alice, action_url("run_now"), {"note": "go", "conf": "[1, 2]"})
    started = post(alice, action_url("run_now"), {"note": "Go", "conf": '{"audience_size": 7}'})

    assert refused.status_code == 422 and "must be a JSON object" in " ".join(flashes(refused))
    assert started.status_code == 303, words(started)[:300]
    assert started.headers["location"].startswith(f"{UI}/display/cr_campaign/run/manual__")
    assert dag_run_count("cr_campaign") == before + 1
    assert "Started run manual__" in " ".join(flashes(alice.get(started.headers["location"])))
    assert post(host.client("viewer"), action_url("run_now"), {"note": "x"}).status_code == 403


@simple_only
def test_fab_urls_lead_to_the_same_pages_here(host: Host, folder: Path) -> None:  # noqa: F811
    admin = host.client("admin")
    for fab_path, ui_path in (
        ("/new", "/new"),
        ("/display/cr_campaign/configure", "/display/cr_campaign/configure"),
    ):
        sent = admin.get(f"/pluginsv2/campaigns{fab_path}")
        assert (sent.status_code, sent.headers["location"]) == (302, f"{UI}{ui_path}")
        assert admin.get(sent.headers["location"]).status_code == 200
    posted = admin.post("/pluginsv2/campaigns/display/cr_campaign/actions/pause", data={"note": "x"})
    assert (posted.status_code, posted.headers["location"]) == (303, f"{UI}/display/cr_campaign/actions/pause")
    opened = admin.get(posted.headers["location"])  # a browser follows a 303 with GET: the display, nothing done
    assert (opened.status_code, opened.headers["location"]) == (303, f"{UI}/display/cr_campaign")
    assert not is_paused("cr_campaign")
