"""The XCom and conf keys the tasks and the plugin share: declared once, with the values deployed runs hold."""

from __future__ import annotations

from pathlib import Path

from campaign_runs.factory import keys

PLUGIN = Path(keys.__file__).resolve().parent.parent
DEPLOYED = {  # written into the metadata DB of every run so far: a new value would orphan them
    "PROGRESS_KEY": "campaign_progress",
    "GUARD_KEY": "campaign_guard",
    "AUDIENCE_ERROR_KEY": "campaign_audience_error",
    "RESEND_IN_DOUBT_KEY": "campaign_resend_in_doubt",
    "RESTART_OF_KEY": "campaign_restart_of",
    "RESTART_SLOT_KEY": "campaign_slot",
}


def test_the_keys_keep_the_values_deployed_runs_hold() -> None:
    declared = {name: value for name, value in vars(keys).items() if name.endswith("_KEY")}
    assert declared == DEPLOYED


def test_no_other_module_spells_a_key_out() -> None:
    """Every module names the constant: a key written out again is a second declaration that can drift."""
    quoted = [f'"{value}"' for value in DEPLOYED.values()] + [f"'{value}'" for value in DEPLOYED.values()]
    found = [
        f"{path.relative_to(PLUGIN)}: {word}"
        for path in sorted(PLUGIN.rglob("*.py"))
        if path.name != "keys.py"
        for word in quoted
        if word in path.read_text(encoding="utf-8")
    ]
    assert found == []
