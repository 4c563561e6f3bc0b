"""``airflow campaigns create|validate|edit|export|history|schema|trigger|pause|resume|stop-all``, in process.

Each command goes through Airflow's own CLI parser (``airflow campaigns ...`` as typed) and its handler, in
this process: the real command line costs seconds per call (``test_cli.py`` covers the process itself).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.core import definitions
from campaign_runs.core.definition_schema import definition_schema
from campaign_runs.settings import get_settings
from campaign_runs.tables import campaign_event

from tests.campaign_runs.api.test_definitions import BAD_IDS, BAD_INPUTS, DAG_ID, VALID, run_conf
from tests.campaign_runs.core.helpers import count

NEW_COMMANDS = {"create", "validate", "edit", "export", "history", "trigger", "pause", "resume", "stop-all", "schema"}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private, writable campaigns folder."""
    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "new.yaml"
    path.write_text(VALID)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    """Run ``airflow campaigns ARGV`` in process; its standard output and error."""
    from airflow.cli import cli_parser

    args = cli_parser.get_parser().parse_args(["campaigns", *argv])
    capsys.readouterr()
    args.func(args)
    captured = capsys.readouterr()
    return captured.out, captured.err


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one-line error of a command that exits 1."""
    with pytest.raises(SystemExit) as raised:
        cli(capsys, *argv)
    message = str(raised.value.code)
    assert message.startswith("Error: ") and "\n" not in message, message
    return message


def test_every_command_is_registered_with_the_usual_options() -> None:
    from campaign_runs.cli.commands import get_cli_commands

    (group,) = get_cli_commands()
    commands = {c.name: c for c in group.subcommands}
    assert set(commands) >= NEW_COMMANDS
    for name in NEW_COMMANDS:
        flags = {f for a in commands[name].args for f in a.flags}
        assert {"-v", "-o", "--output"} <= flags and commands[name].help, name
        assert all(a.kwargs.get("help") for a in commands[name].args), name
        if name not in ("validate", "export", "history", "schema"):
            assert {"--note", "--user", "--yes"} <= flags, name
    assert "--params" in {f for a in commands["restart"].args for f in a.flags}


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = cli(capsys, "schema")
    assert json.loads(out) == definition_schema()
    assert yaml.safe_load(cli(capsys, "schema", "-o", "yaml")[0]) == definition_schema()


def test_validate_accepts_a_good_file(
    capsys: pytest.CaptureFixture[str], yaml_file: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _ = cli(capsys, "validate", "--file", str(yaml_file))
    assert out == f"{yaml_file}: campaign {DAG_ID} is valid.\n"
    assert json.loads(cli(capsys, "validate", "--file", str(yaml_file), "-o", "json")[0]) == {
        "dag_id": DAG_ID,
        "valid": True,
    }
    assert "cannot read" in fails(capsys, "validate", "--file", str(yaml_file.parent / "missing.yaml"))
    monkeypatch.setattr("sys.stdin", io.StringIO(VALID.replace(DAG_ID, "cr_from_stdin")))
    assert cli(capsys, "validate", "--file", "-")[0] == "-: campaign cr_from_stdin is valid.\n"
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("change", "field", "words"), BAD_INPUTS, ids=BAD_IDS)
def test_validate_and_create_refuse_every_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: Path, change: tuple[str, str], field: str, words: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace(*change))
    for command in (("validate",), ("create", "--user", "alice", "--yes")):
        message = fails(capsys, *command, "--file", str(bad))
        assert words in message and message.startswith(f"Error: {field}: " if field else "Error: "), message
    assert list(folder.iterdir()) == [] and count(campaign_event) == 0


def test_create_writes_version_one_and_refuses_a_clash(
    capsys: pytest.CaptureFixture[str], yaml_file: Path, folder: Path
) -> None:
    out, _ = cli(capsys, "create", "--file", str(yaml_file), "--user", "alice", "--note", "Spring", "--yes")
    assert out.startswith(f"{DAG_ID}: version 1 saved (sha {definitions.sha_of(VALID)[:12]}).")
    assert (folder / f"{DAG_ID}.yaml").read_text() == VALID
    waiting = fails(capsys, "create", "--file", str(yaml_file), "--user", "bob", "--yes")
    assert f"The id '{DAG_ID}' is taken: the campaigns folder already has a campaign with it" in waiting
    clash = yaml_file.parent / "clash.yaml"
    clash.write_text(VALID.replace(DAG_ID, "cr_campaign"))
    taken = fails(capsys, "create", "--file", str(clash), "--user", "bob", "--yes")
    assert "The id 'cr_campaign' is taken: campaign cr_campaign" in taken and "already uses it" in taken
    assert "/" not in taken and ".py" not in taken  # no server path, no loader file
    history = json.loads(cli(capsys, "history", DAG_ID, "-o", "json")[0])
    assert [(e["kind"], e["version"], e["actor"], e["note"]) for e in history] == [("created", 1, "alice", "Spring")]
    assert "+id: cr_api_new" in history[0]["diff"]


@pytest.mark.parametrize(("username", "words"), [("viewer", "Campaign Definitions"), ("nobody", "does not exist")])
def test_create_and_edit_refuse_a_user_without_the_permission(
    capsys: pytest.CaptureFixture[str], yaml_file: Path, folder: Path, username: str, words: str
) -> None:
    assert words in fails(capsys, "create", "--file", str(yaml_file), "--user", username, "--yes")
    assert list(folder.iterdir()) == []
    definitions.create_definition(VALID, actor="alice", note="")
    assert words in fails(capsys, "edit", DAG_ID, "--set", "audience.size=9", "--user", username, "--yes")
    assert (folder / f"{DAG_ID}.yaml").read_text() == VALID


def test_create_asks_for_confirmation(capsys: pytest.CaptureFixture[str], yaml_file: Path, folder: Path) -> None:
    assert "pass --yes" in fails(capsys, "create", "--file", str(yaml_file), "--user", "alice")
    assert list(folder.iterdir()) == []


def test_create_in_a_read_only_folder_prints_the_yaml_to_commit(
    capsys: pytest.CaptureFixture[str], yaml_file: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(definitions.files, "writable", lambda path: False)
    out, err = cli(capsys, "create", "--file", str(yaml_file), "--user", "alice", "--yes")
    assert out == VALID and "nothing written" in err and "cannot be written" in err
    assert list(folder.iterdir()) == []


def test_edit_with_set_and_with_a_file(capsys: pytest.CaptureFixture[str], yaml_file: Path, folder: Path) -> None:
    definitions.create_definition(VALID, actor="alice", note="")
    out, _ = cli(
        capsys, "edit", DAG_ID, "--set", "schedule.cron=0 8 * * TUE", "--user", "bob", "--note", "Tue", "--yes"
    )
    assert out.startswith(f"{DAG_ID}: version 2 saved")
    assert yaml.safe_load((folder / f"{DAG_ID}.yaml").read_text())["schedule"]["cron"] == "0 8 * * TUE"
    yaml_file.write_text(VALID.replace("size: 50", "size: 80"))
    saved = json.loads(
        cli(capsys, "edit", DAG_ID, "--file", str(yaml_file), "--user", "admin", "--yes", "-o", "json")[0]
    )
    assert (saved["version"], saved["written"]) == (3, True) and "+  size: 80" in saved["diff"]
    assert (folder / f"{DAG_ID}.yaml").read_text() == VALID.replace("size: 50", "size: 80")
    assert "nothing to change" in fails(capsys, "edit", DAG_ID, "--file", str(yaml_file), "--user", "admin", "--yes")
    assert "either --set" in fails(capsys, "edit", DAG_ID, "--user", "admin", "--yes")
    bad = fails(capsys, "edit", DAG_ID, "--set", "channels.email.batch_size=0", "--user", "admin", "--yes")
    assert bad.startswith("Error: channels.email.batch_size: must be at least 1")
    assert "is not key=value" in fails(capsys, "edit", DAG_ID, "--set", "audience", "--user", "admin", "--yes")
    assert [e.version for e in definitions.history(DAG_ID)] == [3, 2, 1]


def test_a_save_between_reading_and_saving_gets_the_409_message(
    capsys: pytest.CaptureFixture[str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``edit`` saves over the version it read: someone saving while the question is asked wins."""
    from campaign_runs.cli import definitions as cli_definitions

    first = definitions.create_definition(VALID, actor="alice", note="")
    theirs = VALID.replace("size: 50", "size: 60")

    def someone_saves(args: Any, question: str) -> None:
        definitions.update_definition(DAG_ID, theirs, base_sha=first.sha, actor="bob", note="Mine first")

    monkeypatch.setattr(cli_definitions, "confirm", someone_saves)
    message = fails(capsys, "edit", DAG_ID, "--set", "audience.size=70", "--user", "alice", "--yes")
    assert "saved by someone else since you opened it" in message
    assert (folder / f"{DAG_ID}.yaml").read_text() == theirs


def test_a_python_campaign_cannot_be_edited_or_exported(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    assert "written in Python" in fails(capsys, "edit", "cr_campaign", "--set", "a=1", "--user", "admin", "--yes")
    assert "written in Python" in fails(capsys, "export", "cr_campaign")
    state = json.loads(cli(capsys, "export", "cr_campaign", "-o", "json")[0])
    assert (state["editable"], state["yaml"]) == (False, None)
    assert "No campaign 'no_such'" in fails(capsys, "export", "no_such")


def test_export_prints_the_yaml(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    definitions.create_definition(VALID, actor="alice", note="")
    assert cli(capsys, "export", DAG_ID)[0] == VALID
    state = yaml.safe_load(cli(capsys, "export", DAG_ID, "-o", "yaml")[0])
    assert (state["sha"], state["version"], state["editable"]) == (definitions.sha_of(VALID), 1, True)


# ---------------------------------------------------------------- campaign actions


def _paused(dag_id: str) -> bool:
    from campaign_runs import core

    return bool(core.get_campaign(dag_id).summary.is_paused)


def test_pause_resume_and_the_history(capsys: pytest.CaptureFixture[str]) -> None:
    assert "pass --yes" in fails(capsys, "pause", "cr_campaign", "--note", "Hold", "--user", "alice")
    assert not _paused("cr_campaign")
    out, _ = cli(capsys, "pause", "cr_campaign", "--note", "Hold", "--user", "alice", "--yes")
    assert out == "Paused cr_campaign.\n" and _paused("cr_campaign")
    assert "already paused" in fails(capsys, "pause", "cr_campaign", "--note", "Hold", "--user", "alice", "--yes")
    resumed = cli(
        capsys, "resume", "cr_campaign", "--missed", "latest", "--note", "Go", "--user", "bob", "--yes", "-o", "json"
    )
    assert json.loads(resumed[0])["action"] == "resume" and not _paused("cr_campaign")
    history = json.loads(cli(capsys, "history", "cr_campaign", "-o", "json")[0])
    assert [(e["kind"], e["actor"], e["note"]) for e in history] == [
        ("resume", "bob", "Go"),
        ("pause", "alice", "Hold"),
    ]
    assert history[0]["details"]["missed"] == "latest"
    assert "'no_such' does not exist" in fails(capsys, "pause", "no_such", "--note", "x", "--user", "alice", "--yes")


def test_trigger_with_conf_and_bad_conf(capsys: pytest.CaptureFixture[str]) -> None:
    from campaign_runs import core

    out, _ = cli(
        capsys,
        "trigger",
        "cr_campaign",
        "--conf",
        '{"audience_size": 12}',
        "--note",
        "Now",
        "--user",
        "alice",
        "--yes",
        "-o",
        "json",
    )
    (run_id,) = json.loads(out)["run_ids"]
    assert core.get_run("cr_campaign", run_id).status == "queued"
    assert run_conf("cr_campaign", run_id)["audience_size"] == 12
    for bad in ("[1, 2]", "{not json"):
        with pytest.raises(SystemExit) as usage:
            cli(capsys, "trigger", "cr_campaign", "--conf", bad, "--note", "x", "--user", "alice", "--yes")
        assert usage.value.code == 2
    assert "A note is required" in fails(capsys, "trigger", "cr_campaign", "--user", "alice", "--yes")


def test_stop_all_stops_every_active_run(capsys: pytest.CaptureFixture[str], make_run: Any) -> None:
    assert "no run to stop" in fails(capsys, "stop-all", "cr_campaign", "--note", "x", "--user", "alice", "--yes")
    running = make_run("cr_campaign", state="running")
    out, _ = cli(capsys, "stop-all", "cr_campaign", "--note", "Wrong segment", "--user", "alice", "--yes")
    assert out == f"Stopping 1 run of cr_campaign.\n  {running}: stopping\n"


def test_restart_takes_params(capsys: pytest.CaptureFixture[str], make_run: Any) -> None:
    from campaign_runs import core

    failed = make_run("cr_campaign", state="failed", ti_states={"send_sms": "failed"})
    out, _ = cli(
        capsys,
        "restart",
        "cr_campaign",
        failed,
        "--params",
        '{"audience_size": 3}',
        "--note",
        "Fixed",
        "--user",
        "alice",
        "--yes",
        "-o",
        "json",
    )
    new_run_id = json.loads(out)["new_run_id"]
    assert run_conf("cr_campaign", new_run_id)["audience_size"] == 3
    assert core.get_run("cr_campaign", failed).status == "skipped"
