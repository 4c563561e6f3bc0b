"""Words a user reads: the About's channel settings, YAML mistakes, and the plugin's emails (issue 25, defect 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from campaign_runs.core import definition_text, definitions, notify
from campaign_runs.domain import DefinitionInvalidError, plural
from campaign_runs.factory.about import about_markdown
from campaign_runs.factory.documents import load_yaml, yaml_problem
from campaign_runs.factory.spec import CampaignSpecError, load_spec, parse_spec
from campaign_runs.pages.format import render_markdown

from tests.support.definitions import valid_definition

VALID = valid_definition("cr_wording")
HOSTILE_SUBJECT = "Hi <script>alert(1)</script> *now* | `code` [link](javascript:x) & more_words"


def about_of(subject: str) -> str:
    """The About of a campaign whose email subject is ``subject``."""
    data = yaml.safe_load(VALID)
    data["channels"]["email"]["subject"] = subject
    return about_markdown(parse_spec(data, Path(f"{data['id']}.yaml")))


def test_channel_settings_are_a_list_under_the_table_never_html() -> None:
    """No ``<br>`` (shown as is by Airflow's and the plugin's Markdown): one setting a line, under the table."""
    about = about_of("Spring for $first_name")
    assert "<br>" not in about
    assert "| Channel | Delivery | Batch size | Rate limit | Sending |\n" in about
    assert "##### Settings of email\n\n- subject: Spring for $first\\_name\n- body: Hello $first\\_name," in about
    html = render_markdown(about)
    assert "&lt;br&gt;" not in html  # a literal <br> shown as text
    assert "<li>subject: Spring for $first_name</li>" in html


def test_a_setting_is_shown_as_written_and_never_becomes_markup() -> None:
    """HTML, emphasis, code, links and table pipes in a setting are text on the page."""
    html = render_markdown(about_of(HOSTILE_SUBJECT))
    assert (
        "<li>subject: Hi &lt;script&gt;alert(1)&lt;/script&gt; *now* | `code` [link](javascript:x) &amp; more_w" in html
    )
    assert "<script>" not in html and "<em>" not in html and "<code>code" not in html and "href" not in html


def test_a_long_setting_ends_with_an_ellipsis() -> None:
    about = about_of("x" * 200)
    assert f"- subject: {'x' * 79}\u2026\n" in about


YAML_MISTAKES = [
    ("{plan: gold", "the { opened at line 1, column 1 is not closed: a ',' or '}' is missing at line 1, column 12"),
    (
        "plan: [gold, silver",
        "the [ opened at line 1, column 7 is not closed: a ',' or ']' is missing at line 1, column 20",
    ),
    ("plan: 'gold", "the quote opened at line 1, column 7 is not closed"),
    ("plan: gold\nsilver", "line 2, column 1 has no ':' (write key: value)"),
    ("plan: a: b", "a second ': ' at line 1, column 8: put a value that holds ': ' in quotes"),
    ("plan:\n\t- gold", "a tab at line 2, column 1: indent with spaces"),
    ("plan: @gold", "'@' at line 1, column 7 cannot start a value"),
    ("plan: gold\nplan: silver", "duplicate key 'plan' at line 2, column 1"),
    ("- gold\nplan: 1", "the indentation at line 2, column 1 does not match the lines above it"),
    ("plan: \x01", "the character U+0001 at position 7 is not allowed"),
]


@pytest.mark.parametrize(("text", "words"), YAML_MISTAKES, ids=[m[0][:12] for m in YAML_MISTAKES])
def test_a_yaml_mistake_is_said_in_words_with_its_line_and_column(text: str, words: str) -> None:
    with pytest.raises(yaml.YAMLError) as error:
        load_yaml(text)
    said = yaml_problem(error.value)
    assert said == words
    assert "<unicode string>" not in said and "while parsing" not in said and "while scanning" not in said


def test_every_surface_says_the_yaml_mistake_in_words(tmp_path: Path) -> None:
    """New/Configure/validate (the definition), edit --set (a value) and the loader (a file): no parser text."""
    with pytest.raises(DefinitionInvalidError) as whole:
        definition_text.validate_text("id: x\nchannels: {email: {subject: Hi}\n")
    assert "invalid YAML: the { opened at line 2, column 11 is not closed" in str(whole.value)
    with pytest.raises(DefinitionInvalidError) as value:
        definitions.apply_settings(VALID, ["audience.criteria={plan: gold"])
    assert "value is not valid YAML: the { opened at line 1, column 1 is not closed" in str(value.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\ntags: [a, b\n")
    with pytest.raises(CampaignSpecError) as loaded:
        load_spec(broken)
    assert "invalid YAML: the [ opened at line 2, column 7 is not closed" in str(loaded.value)
    for said in (str(whole.value), str(value.value), str(loaded.value)):
        assert "<unicode string>" not in said and "while parsing" not in said


def test_counts_are_singular_or_plural() -> None:
    assert [plural(n, "run") for n in (0, 1, 2, 1200)] == ["0 runs", "1 run", "2 runs", "1,200 runs"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"


@pytest.mark.parametrize(("in_doubt", "words"), [(1, "1 recipient was in doubt"), (2, "2 recipients were in doubt")])
def test_the_restarted_email_counts_recipients_in_doubt_in_words(in_doubt: int, words: str) -> None:
    context = {"username": "alice", "run_id": "r1", "campaign": "c", "new_run_id": "r2", "in_doubt": in_doubt}
    email = notify.render("restarted", context)
    assert words in email.body_text and words in email.body_html
    assert "(s)" not in email.body_text and "(s)" not in email.body_html


def test_a_campaign_action_email_is_one_sentence_and_an_older_queued_one_still_reads() -> None:
    """The subject and first line are sentences; an email queued before (``summary`` only) keeps its old line."""
    context = {
        "username": "alice",
        "campaign": "c",
        "summary": "Stopping 1 run of c",
        "sentence": "1 run of campaign c is stopping, as you asked.",
        "runs": [],
    }
    email = notify.render("campaign_action", context)
    assert email.subject.endswith("Stopping 1 run of c")
    assert "1 run of campaign c is stopping, as you asked." in email.body_text
    assert "<p>1 run of campaign c is stopping, as you asked.</p>" in email.body_html
    older = notify.render("campaign_action", {**context, "summary": "Paused", "sentence": None})
    assert "Paused on campaign c, as you asked." in older.body_text
