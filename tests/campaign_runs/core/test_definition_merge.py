"""The three-way merge of campaign definitions: yours applied on top of theirs field by field, never blindly.

The pure merge first (mappings in, a merge out), then the core's Configure refusing a stale save with the merge:
their diff, theirs with your other changes applied (``merged``) and the fields you both changed (``conflicts``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.core import definitions
from campaign_runs.core.definition_merge import (
    ABSENT,
    Change,
    Conflict,
    merge,
    resolve,
    same,
    value_at,
    value_of_text,
    value_text,
)
from campaign_runs.domain import DefinitionConflictError
from campaign_runs.settings import get_settings

from tests.support.definitions import valid_definition

BASE: dict[str, Any] = {
    "id": "spring",
    "description": "Spring promotion.",
    "schedule": {"cron": "0 9 * * MON", "timezone": "Europe/Paris", "start_date": dt.date(2026, 1, 5)},
    "audience": {"segment": "testers", "criteria": {"plan": "gold"}, "size": 50},
    "channels": {
        "email": {"subject": "Spring for $first_name", "body": "Hello $first_name", "batch_size": 25},
        "sms": {"text": "Spring!", "sender": "Shop"},
    },
    "tags": ["spring"],
}


def edited(**changes: Any) -> dict[str, Any]:
    """``BASE`` with each ``a__b=value`` set at path ``a.b`` (``ABSENT`` removes the field)."""
    return resolve(BASE, {tuple(name.split("__")): value for name, value in changes.items()})


# ------------------------------------------------------------------ the pure merge


def test_fields_changed_by_one_side_only_are_all_kept() -> None:
    theirs = edited(schedule__cron="0 10 * * TUE", channels__email__subject="Theirs")
    yours = edited(audience__size=70, channels__email__body="Yours")

    found = merge(BASE, theirs, yours)

    assert found.conflicts == ()
    assert found.merged == edited(
        schedule__cron="0 10 * * TUE",
        channels__email__subject="Theirs",
        audience__size=70,
        channels__email__body="Yours",
    )
    assert found.applied == (
        Change(("audience", "size"), 50, 70),
        Change(("channels", "email", "body"), "Hello $first_name", "Yours"),
    )
    assert [change.field for change in found.applied] == ["audience.size", "channels.email.body"]


def test_a_field_both_changed_differently_is_a_conflict_that_keeps_theirs_until_chosen() -> None:
    theirs = edited(channels__email__subject="Theirs", audience__size=60)
    yours = edited(channels__email__subject="Yours", audience__size=60, channels__sms__sender="Mine")

    found = merge(BASE, theirs, yours)

    assert found.conflicts == (Conflict(("channels", "email", "subject"), "Spring for $first_name", "Theirs", "Yours"),)
    assert value_at(found.merged, ("channels", "email", "subject")) == "Theirs"
    assert value_at(found.merged, ("audience", "size")) == 60  # the same change on both sides: no conflict
    assert [change.field for change in found.applied] == ["channels.sms.sender"]
    chosen = resolve(found.merged, {found.conflicts[0].path: found.conflicts[0].yours})
    assert chosen == edited(channels__email__subject="Yours", audience__size=60, channels__sms__sender="Mine")


def test_a_channel_they_removed_that_you_changed_is_one_conflict_on_the_channel() -> None:
    theirs = edited(channels__sms=ABSENT)
    yours = edited(channels__sms__text="Spring, now!")

    found = merge(BASE, theirs, yours)

    assert [(c.field, c.theirs, c.yours) for c in found.conflicts] == [
        ("channels.sms", ABSENT, {"text": "Spring, now!", "sender": "Shop"})
    ]
    assert "sms" not in found.merged["channels"]
    assert resolve(found.merged, {("channels", "sms"): ABSENT}) == theirs
    assert resolve(found.merged, {("channels", "sms"): found.conflicts[0].yours}) == yours


def test_a_channel_you_removed_goes_unless_they_changed_it() -> None:
    untouched = merge(BASE, edited(audience__size=60), edited(channels__sms=ABSENT))
    assert untouched.conflicts == () and "sms" not in untouched.merged["channels"]
    assert untouched.merged["audience"]["size"] == 60

    changed = merge(BASE, edited(channels__sms__sender="Theirs"), edited(channels__sms=ABSENT))
    assert [(c.field, c.yours) for c in changed.conflicts] == [("channels.sms", ABSENT)]
    assert changed.merged["channels"]["sms"]["sender"] == "Theirs"


def test_a_channel_both_added_is_merged_setting_by_setting() -> None:
    theirs = edited(channels__push={"title": "Hi", "body": "Theirs"})
    yours = edited(channels__push={"title": "Hi", "body": "Yours", "deep_link": "app://spring"})

    found = merge(BASE, theirs, yours)

    assert [(c.field, c.base, c.theirs, c.yours) for c in found.conflicts] == [
        ("channels.push.body", ABSENT, "Theirs", "Yours")
    ]
    assert found.merged["channels"]["push"] == {"title": "Hi", "body": "Theirs", "deep_link": "app://spring"}


def test_criteria_merge_key_by_key_and_lists_are_whole_values() -> None:
    theirs = edited(audience__criteria={"plan": "silver"}, tags=["spring", "theirs"])
    yours = edited(audience__criteria={"plan": "gold", "country": "FR"}, tags=["spring", "yours"])

    found = merge(BASE, theirs, yours)

    assert found.merged["audience"]["criteria"] == {"plan": "silver", "country": "FR"}
    assert [c.field for c in found.conflicts] == ["tags"]
    assert found.merged["tags"] == ["spring", "theirs"]


def test_merged_keys_keep_their_order_then_your_new_ones() -> None:
    theirs = {"b": 1, "a": 1}
    yours = {"a": 1, "c": 3, "b": 1}

    assert list(merge({"a": 1, "b": 1}, theirs, yours).merged) == ["b", "a", "c"]


def test_without_the_base_every_difference_is_a_conflict_and_nothing_is_applied() -> None:
    theirs = edited(schedule__cron="0 10 * * TUE")
    yours = edited(audience__size=70)

    found = merge(None, theirs, yours)

    assert not found.base_known and found.applied == ()
    assert [(c.field, c.base, c.theirs, c.yours) for c in found.conflicts] == [
        ("schedule.cron", ABSENT, "0 10 * * TUE", "0 9 * * MON"),
        ("audience.size", ABSENT, 50, 70),
    ]
    assert found.merged == theirs


def test_values_of_other_types_are_different_values() -> None:
    assert not same(1, True) and not same(1, 1.0) and not same({"a": 1}, {"a": True})
    assert same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) and same(ABSENT, ABSENT)
    found = merge({"size": 1}, {"size": 1}, {"size": True})
    assert found.applied == (Change(("size",), 1, True),)


def test_resolve_sets_removes_and_creates_what_a_choice_needs_without_touching_its_input() -> None:
    data = {"a": {"b": 1}}

    assert resolve(data, {("a", "b"): ABSENT, ("c", "d"): 2, ("e", "f"): ABSENT}) == {"a": {}, "c": {"d": 2}}
    assert data == {"a": {"b": 1}}
    assert value_at(data, ("a", "b", "c")) is ABSENT and value_at(data, ("x",)) is ABSENT


@pytest.mark.parametrize(
    "value",
    [
        "0 9 * * MON",
        "Hello $first_name,\nyour plan has a gift.\n",
        "  two lines\nwith trailing space  ",
        "yes",
        "",
        None,
        50,
        2.5,
        True,
        dt.date(2026, 1, 5),
        {"text": "Hi\nthere", "sender": "Shop"},
        ["spring", "sale"],
    ],
)
def test_a_value_written_as_yaml_reads_back_exactly(value: Any) -> None:
    text = value_text(value)

    assert text is not None and not text.endswith("...\n")
    assert same(value_of_text(text), value)


def test_absent_is_no_yaml_and_multi_line_texts_read_as_written() -> None:
    assert value_text(ABSENT) is None and value_of_text(None) is ABSENT
    assert value_text("Hello\nworld") == "|-\n  Hello\n  world\n"
    conflict = Conflict(("channels", "sms"), {"text": "Hi"}, ABSENT, {"text": "Hi\nthere"})
    assert conflict.as_dict() == {
        "field": "channels.sms",
        "path": ["channels", "sms"],
        "base": "text: Hi\n",
        "theirs": None,
        "yours": "text: |-\n  Hi\n  there\n",
    }


# ------------------------------------------------------------------ Configure refuses a stale save with the merge

VALID = valid_definition("cr_merge_campaign")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A private, writable campaigns folder."""
    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_a_stale_save_is_refused_with_theirs_and_yours_merged_and_the_fields_both_changed(folder: Path) -> None:
    first = definitions.create_definition(VALID, actor="alice", note="")
    theirs = VALID.replace('"0 9 * * MON"', '"0 10 * * TUE"').replace("Spring for", "Theirs for")
    saved = definitions.update_definition("cr_merge_campaign", theirs, base_sha=first.sha, actor="bob", note="")
    yours = VALID.replace("size: 50", "size: 70").replace("Spring for", "Yours for")

    with pytest.raises(DefinitionConflictError) as raised:
        definitions.update_definition("cr_merge_campaign", yours, base_sha=first.sha, actor="admin", note="")

    error = raised.value
    assert error.current_sha == saved.sha and '+  cron: "0 10 * * TUE"' in error.changes
    assert "changed by both of you: channels.email.subject" in str(error) and "redo" not in str(error)
    assert error.conflicts == (
        {
            "field": "channels.email.subject",
            "path": ["channels", "email", "subject"],
            "base": "Spring for $first_name\n",
            "theirs": "Theirs for $first_name\n",
            "yours": "Yours for $first_name\n",
        },
    )
    merged = yaml.safe_load(error.merged or "")
    assert merged["schedule"]["cron"] == "0 10 * * TUE"  # theirs
    assert merged["audience"]["size"] == 70  # yours, applied on top
    assert merged["channels"]["email"]["subject"] == "Theirs for $first_name"  # theirs until chosen
    assert (folder / "cr_merge_campaign.yaml").read_text() == theirs  # nothing written
    assert [e.version for e in definitions.history("cr_merge_campaign")] == [2, 1]
    assert definitions.version_text("cr_merge_campaign", first.sha) == VALID
    assert definitions.version_text("cr_merge_campaign", "0" * 64) is None


def test_the_merged_version_saves_over_theirs_and_moved_again_it_is_merged_again(folder: Path) -> None:
    first = definitions.create_definition(VALID, actor="alice", note="")
    theirs = definitions.update_definition(
        "cr_merge_campaign", VALID.replace("Spring for", "Theirs for"), base_sha=first.sha, actor="bob", note=""
    )
    with pytest.raises(DefinitionConflictError) as raised:
        definitions.update_definition(
            "cr_merge_campaign", VALID.replace("size: 50", "size: 70"), base_sha=first.sha, actor="admin", note=""
        )
    assert raised.value.conflicts == () and "they changed none of the fields you changed" in str(raised.value)
    merged = raised.value.merged or ""
    moved = definitions.update_definition(
        "cr_merge_campaign", theirs.text.replace("size: 50", "size: 55"), base_sha=theirs.sha, actor="bob", note=""
    )

    with pytest.raises(DefinitionConflictError) as again:  # merged over a version that moved on meanwhile
        definitions.update_definition(
            "cr_merge_campaign", merged, base_sha=raised.value.current_sha, actor="admin", note=""
        )

    assert again.value.current_sha == moved.sha
    assert [c["field"] for c in again.value.conflicts] == ["audience.size"]
    final = definitions.update_definition(
        "cr_merge_campaign", again.value.merged or "", base_sha=moved.sha, actor="admin", note="merged"
    )
    written = yaml.safe_load((folder / "cr_merge_campaign.yaml").read_text())
    assert final.written and written["audience"]["size"] == 55
    assert written["channels"]["email"]["subject"] == "Theirs for $first_name"


def test_without_a_saved_base_the_conflict_lists_every_field_that_differs(folder: Path) -> None:
    first = definitions.create_definition(VALID, actor="alice", note="")
    definitions.update_definition(
        "cr_merge_campaign", VALID.replace("size: 50", "size: 60"), base_sha=first.sha, actor="bob", note=""
    )

    with pytest.raises(DefinitionConflictError) as raised:  # a base that no saved version has (a hand edit)
        definitions.update_definition(
            "cr_merge_campaign",
            VALID.replace("segment: testers", "segment: buyers"),
            base_sha="f" * 64,
            actor="admin",
            note="",
        )

    assert sorted(c["field"] for c in raised.value.conflicts) == ["audience.segment", "audience.size"]
    assert (
        yaml.safe_load(raised.value.merged or "")["audience"]
        == yaml.safe_load(VALID.replace("size: 50", "size: 60"))["audience"]
    )
