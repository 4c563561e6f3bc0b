"""Configure after someone else saved: a real choice, never a blind overwrite (issue 25, defect 5).

Two users open Configure at the same version through the FAB pages (real login, real DB, real files). Alice
saves first; Bob's save gets 409 with Alice's version and his other changes applied on top of it, field by
field, and beside each field they both changed both values and a choice. Nothing is saved until Bob saves the
merged version with every choice made, over the newest version: if it moved again, he gets a new merge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import yaml
from campaign_runs.core import definitions
from campaign_runs.pages.fab.definitions import AIRFLOW_SWITCH
from starlette.testclient import TestClient

from tests.campaign_runs.pages.fab.test_campaigns import BASE, flashes, text
from tests.campaign_runs.pages.fab.test_definitions import (
    FORM,
    action_url,
    configure_url,
    create,
    folder,
    input_value,
    keep_schedules,
    post,
    users,
)

__all__ = ["folder", "keep_schedules", "users"]  # fixtures: a campaigns folder, schedules kept, logged-in users

DAG_ID = "cr_ui_campaign"
SUBJECT = "channels.email.subject"


def hidden_fields(response: Any) -> dict[str, str]:
    """The form's hidden inputs (base version, conflicts) by name."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.text)
    return {name: unescape(value) for name, value in found if name != "csrf_token"}


def visible_fields(response: Any) -> dict[str, str]:
    """Every text input and textarea of the definition form, as the browser would send them back."""
    fields = {
        name: unescape(value)
        for name, value in re.findall(
            r'<input type="[a-z]+" id="cr-f-[^"]+" name="([^"]+)" value="([^"]*)"', response.text
        )
    }
    fields.update(
        {
            name: unescape(value)
            for name, value in re.findall(
                r'<textarea id="cr-f-[^"]+" name="([^"]+)"[^>]*>(.*?)</textarea>', response.text, re.S
            )
        }
    )
    for name, value in re.findall(
        r'<input type="(?:radio|checkbox)" name="([^"]+)" value="([^"]*)"[^>]*\bchecked\b', response.text
    ):
        fields[name] = value
    for name, body in re.findall(r'<select id="cr-f-[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', response.text, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', body)
        fields[name] = unescape(selected.group(1)) if selected else ""
    return fields


def conflict_box(response: Any, field: str) -> str:
    """The HTML of the choice shown for ``field``, which both users changed."""
    match = re.search(
        rf'<div class="cr-conflict-field[^"]*" id="cr-conflict-\d+" data-conflict="{re.escape(field)}"'
        r'.*?</label>\s*(?:<div class="cr-error".*?</div>)?\s*</div>',
        response.text,
        re.S,
    )
    assert match, f"no choice for {field} in the page"
    return match.group(0)


def slot_with(response: Any, slot: str) -> str:
    """The HTML of the form's field ``slot``, up to the next field."""
    match = re.search(rf'data-slot="{re.escape(slot)}"(.*?)(?=<div class="cr-field|</fieldset>)', response.text, re.S)
    assert match, f"no field {slot}"
    return match.group(1)


def on_disk(folder: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((folder / f"{DAG_ID}.yaml").read_text()))


def both_saved_from_the_same_version(
    folder: Path, users: Callable[[str], TestClient], bob_changes: dict[str, str]
) -> tuple[TestClient, Any]:
    """Alice saves a new cron and subject; Bob, who opened the same version, saves ``bob_changes``: his 409."""
    first = create(folder)
    alice, bob = users("alice"), users("bob")
    opened = bob.get(configure_url(DAG_ID))
    assert input_value(opened, "base_sha") == first.sha
    alices = {**FORM, "schedule.cron": "0 10 * * TUE", SUBJECT: "Alice's subject", "base_sha": first.sha}
    assert post(alice, configure_url(DAG_ID), alices).status_code == 303
    stale = post(bob, configure_url(DAG_ID), {**FORM, **bob_changes, "base_sha": first.sha, "note": "<b>mine</b>"})
    return bob, stale


def test_a_stale_save_shows_theirs_with_yours_on_top_and_both_values_where_both_changed(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    bob, stale = both_saved_from_the_same_version(folder, users, {"audience.size": "70", SUBJECT: "Bob's subject"})
    alices = (folder / f"{DAG_ID}.yaml").read_text()

    assert stale.status_code == 409
    banner = re.search(r'<div class="cr-paused-note" id="cr-conflict">(.*?)</div>', stale.text, re.S)
    assert banner, "no conflict banner"
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", banner.group(1))).split())
    assert "Someone else saved cr_ui_campaign since you opened it (now version 2)" in words
    assert "Nothing of yours is saved yet" in words and "replaces" not in words and "redo" not in words
    assert "Reload their version (your changes are dropped), or apply your changes on top of theirs" in words
    assert "with your change to 1 other field applied, and beside the field you both changed, both values" in words
    assert f'<a id="cr-reload-theirs" href="{configure_url(DAG_ID)}">Reload their version</a>' in banner.group(1)
    applied = re.search(r'<ul id="cr-merge-applied">(.*?)</ul>', banner.group(1), re.S)
    assert applied and re.findall(r"<code>(.*?)</code>", applied.group(1)) == ["audience.size: 50 → 70"]  # his, on hers
    assert "+  cron: 0 10 * * TUE" in unescape(banner.group(1))  # what she changed, as a diff
    fields = visible_fields(stale)
    assert fields["schedule.cron"] == "0 10 * * TUE"  # hers
    assert fields["audience.size"] == "70"  # his
    assert fields[SUBJECT] == "Alice's subject"  # hers until he chooses
    assert hidden_fields(stale)["base_sha"] == definitions.sha_of(alices)  # the merge is based on her version
    box = conflict_box(stale, SUBJECT)
    assert box in slot_with(stale, SUBJECT)  # beside the field
    assert "Alice&#39;s subject" in box and "Bob&#39;s subject" in box
    assert re.findall(r'name="conflict\.0\.choice" value="([a-z]+)" (checked)?', box) == [("theirs", ""), ("yours", "")]
    assert json.loads(hidden_fields(stale)["conflict.0"]) == {
        "path": ["channels", "email", "subject"],
        "theirs": "Alice's subject\n",
        "yours": "Bob's subject\n",
    }
    assert len(re.findall(r'class="cr-conflict-field', stale.text)) == 1
    assert "&lt;b&gt;mine&lt;/b&gt;" in stale.text
    assert 'id="cr-save">Save the merged version</button>' in stale.text
    assert (folder / f"{DAG_ID}.yaml").read_text() == alices
    assert [e.version for e in definitions.history(DAG_ID)] == [2, 1]
    reloaded = bob.get(configure_url(DAG_ID))  # Reload theirs: her version, his changes dropped
    assert input_value(reloaded, "audience.size") == "50" and input_value(reloaded, SUBJECT) == "Alice's subject"


def test_the_merged_version_is_saved_only_with_a_choice_for_each_field_both_changed(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    bob, stale = both_saved_from_the_same_version(folder, users, {"audience.size": "70", SUBJECT: "Bob's subject"})
    merged_form = {**visible_fields(stale), **hidden_fields(stale), "note": "merged"}
    alices = (folder / f"{DAG_ID}.yaml").read_text()

    unchosen = post(bob, configure_url(DAG_ID), merged_form)

    assert unchosen.status_code == 422
    said = re.search(r'<div class="cr-flash danger" id="cr-form-error" role="alert">(.*?)</div>', unchosen.text, re.S)
    assert said and "Choose beside each field you both changed: keep theirs or take yours." in unescape(said.group(1))
    assert "Choose one: keep theirs or take yours." in conflict_box(unchosen, SUBJECT)
    assert hidden_fields(unchosen)["conflict.0"] == merged_form["conflict.0"]  # the choice is still offered
    assert (folder / f"{DAG_ID}.yaml").read_text() == alices

    saved = post(bob, configure_url(DAG_ID), {**merged_form, "conflict.0.choice": "yours"})

    assert saved.status_code == 303, text(saved)[:400]
    written = on_disk(folder)
    assert written["schedule"]["cron"] == "0 10 * * TUE"  # Alice's change stands
    assert written["audience"]["size"] == 70  # Bob's change, applied on top
    assert written["channels"]["email"]["subject"] == "Bob's subject"  # his, as he chose
    versions = [(e.version, e.actor, e.note) for e in definitions.history(DAG_ID)]
    assert versions == [(3, "bob", "merged"), (2, "alice", "Spring"), (1, "alice", "first")]


def test_keep_theirs_keeps_their_value_and_still_applies_yours_elsewhere(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    bob, stale = both_saved_from_the_same_version(folder, users, {"audience.size": "70", SUBJECT: "Bob's subject"})

    form = {**visible_fields(stale), **hidden_fields(stale), "conflict.0.choice": "theirs"}
    assert post(bob, configure_url(DAG_ID), form).status_code == 303

    written = on_disk(folder)
    assert written["channels"]["email"]["subject"] == "Alice's subject"
    assert (written["audience"]["size"], written["schedule"]["cron"]) == (70, "0 10 * * TUE")


def test_a_merge_over_a_version_that_moved_again_is_merged_again(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    bob, stale = both_saved_from_the_same_version(folder, users, {"audience.size": "70", SUBJECT: "Bob's subject"})
    merged_form = {**visible_fields(stale), **hidden_fields(stale), "conflict.0.choice": "yours"}
    alice = users("alice")
    third = {**FORM, "schedule.cron": "0 11 * * WED", SUBJECT: "Alice's subject", "base_sha": merged_form["base_sha"]}
    assert post(alice, configure_url(DAG_ID), third).status_code == 303
    alices = (folder / f"{DAG_ID}.yaml").read_text()

    again = post(bob, configure_url(DAG_ID), merged_form)

    assert again.status_code == 409  # a new 409: nothing saved over her newest version
    assert (folder / f"{DAG_ID}.yaml").read_text() == alices
    fields = visible_fields(again)
    assert (fields["schedule.cron"], fields["audience.size"], fields[SUBJECT]) == (
        "0 11 * * WED",
        "70",
        "Bob's subject",
    )
    assert 'class="cr-conflict-field' not in again.text  # she did not touch what he changed this time
    assert hidden_fields(again)["base_sha"] == definitions.sha_of(alices)
    assert post(bob, configure_url(DAG_ID), {**fields, **hidden_fields(again)}).status_code == 303
    written = on_disk(folder)
    assert (written["schedule"]["cron"], written["audience"]["size"]) == ("0 11 * * WED", 70)
    assert written["channels"]["email"]["subject"] == "Bob's subject"
    assert [e.actor for e in definitions.history(DAG_ID)] == ["bob", "alice", "alice", "alice"]


def test_a_channel_she_turned_off_that_he_changed_is_a_choice_beside_the_channel(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    first = create(folder, DAG_ID)
    with_sms = {**FORM, "channels.sms.enabled": "on", "channels.sms.text": "Spring!", "base_sha": first.sha}
    alice, bob = users("alice"), users("bob")
    assert post(alice, configure_url(DAG_ID), with_sms).status_code == 303
    second = definitions.definition_of(DAG_ID).sha or ""
    off = {**with_sms, "channels.sms.enabled": "", "base_sha": second}
    assert post(alice, configure_url(DAG_ID), off).status_code == 303

    stale = post(bob, configure_url(DAG_ID), {**with_sms, "channels.sms.text": "Spring, now!", "base_sha": second})

    assert stale.status_code == 409
    box = conflict_box(stale, "channels.sms")
    assert box in re.search(r'<fieldset class="cr-channel" id="cr-channel-sms".*?</fieldset>', stale.text, re.S).group(
        0
    )  # type: ignore[union-attr]
    assert "(not set)" in box and "Spring, now!" in unescape(box)
    taken = {**visible_fields(stale), **hidden_fields(stale), "conflict.0.choice": "yours"}
    assert post(bob, configure_url(DAG_ID), taken).status_code == 303
    assert on_disk(folder)["channels"]["sms"]["text"] == "Spring, now!"


def test_a_version_written_by_hand_is_no_base_so_every_field_that_differs_is_a_choice(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    create(folder)
    path = folder / f"{DAG_ID}.yaml"
    path.write_text(path.read_text().replace("size: 50", "size: 55"))  # edited by hand: no version has it
    alice, bob = users("alice"), users("bob")
    by_hand = input_value(bob.get(configure_url(DAG_ID)), "base_sha") or ""
    assert definitions.version_text(DAG_ID, by_hand) is None
    alices = {**FORM, "audience.size": "55", SUBJECT: "Alice's subject", "base_sha": by_hand}
    assert post(alice, configure_url(DAG_ID), alices).status_code == 303

    stale = post(
        bob, configure_url(DAG_ID), {**FORM, "audience.size": "55", "schedule.cron": "0 8 * * *", "base_sha": by_hand}
    )

    assert stale.status_code == 409
    assert "The version you opened is not in the history" in text(stale)
    assert 'id="cr-merge-applied"' not in stale.text  # nothing of his applied without his say
    shown = sorted(re.findall(r'data-conflict="([^"]+)"', stale.text))
    assert shown == ["channels.email.subject", "schedule.cron"]  # his cron, and her subject he never saw
    kind = stale.text.split('id="cr-schedule-fields"')[1].split('data-slot="schedule.cron"')[0]
    assert conflict_box(stale, "schedule.cron") in kind  # beside the schedule's kind, shown whatever the kind


def test_a_tampered_conflict_field_is_refused_and_writes_nothing(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    bob, stale = both_saved_from_the_same_version(folder, users, {SUBJECT: "Bob's subject"})
    form = {**visible_fields(stale), **hidden_fields(stale), "conflict.0.choice": "yours"}
    before = (folder / f"{DAG_ID}.yaml").read_text()

    for bad in (
        {"conflict.0": "not json"},
        {"conflict.0": '{"path": [], "yours": null}'},
        {"conflict.0.choice": "mine"},
    ):
        refused = post(bob, configure_url(DAG_ID), {**form, **bad})
        assert refused.status_code == 400, bad

    assert (folder / f"{DAG_ID}.yaml").read_text() == before


def test_pause_and_resume_say_when_airflows_own_switch_shows_it(
    folder: Path, users: Callable[[str], TestClient]
) -> None:
    alice = users("alice")

    assert post(alice, action_url("cr_campaign", "pause"), {"note": "Holidays"}).status_code == 303
    assert AIRFLOW_SWITCH in flashes(alice.get(f"{BASE}/display/cr_campaign"))
    assert post(alice, action_url("cr_campaign", "resume"), {"note": "Back", "missed": "none"}).status_code == 303

    shown = flashes(alice.get(f"{BASE}/display/cr_campaign"))
    assert (
        "Airflow's own pause switch at the top of this DAG's page shows the change after you reload" in AIRFLOW_SWITCH
    )
    assert AIRFLOW_SWITCH in shown and any(line.startswith("Resumed cr_campaign") for line in shown)
