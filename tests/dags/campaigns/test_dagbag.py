"""Every campaign file loads through a real DagBag and the one loader; a broken YAML hides no other campaign."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.dags.conftest import CAMPAIGNS, DAGS

# dag_id: channels, the audience:<segment> tag (a real source's is its kind), timetable, the About's audience title
EXPECTED = {
    "weekly_newsletter": (
        ["email", "push"],
        "sql",
        "CampaignTimetable",
        "#### Audience: SQL query on Connection `subscribers_db`",
    ),
    "cart_abandonment": (
        ["email", "sms", "push"],
        "cart_abandoners_1h",
        "CampaignTimetable",
        "#### Audience: `cart_abandoners_1h`, demo audience (synthetic)",
    ),
    "flash_sale": (["sms", "email", "push"], "file", "NullTimetable", "#### Audience: CSV file `file://"),
}


@pytest.fixture(scope="module")
def bag() -> DagBag:
    """The repository's dags folder, parsed by Airflow."""
    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports(bag: DagBag) -> None:
    """No import errors; exactly the three shipped campaigns; helper modules are not parsed."""
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(EXPECTED)
    parsed = {Path(stat.file).name for stat in bag.dagbag_stats}
    assert parsed == {"campaigns.py"}


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_campaign_metadata_contract(bag: DagBag, dag_id: str) -> None:
    """Tags, description, owner, owner links, doc_md, params and task ids follow the plugin's contract."""
    channels, segment, timetable, title = EXPECTED[dag_id]
    dag = bag.get_dag(dag_id)
    assert dag is not None
    assert {"campaign", f"audience:{segment}", *(f"channel:{c}" for c in channels)} <= set(dag.tags)
    assert sum(tag.startswith("channel:") for tag in dag.tags) == len(channels)
    assert sorted(task.task_id for task in dag.tasks) == sorted(
        ["build_audience", "summarise", *(f"send_{c}" for c in channels)]
    )
    assert type(dag.timetable).__name__ == timetable
    owner = dag.default_args["owner"]
    assert list(dag.owner_links) == [owner]
    assert dag.owner_links[owner].startswith("mailto:") and dag.owner_links[owner].endswith("@example.com")
    assert dag.description
    assert title in (dag.doc_md or "")
    # Only the demo audience has a size to choose; a real source's rows are what they are.
    assert ("audience_size" in dag.params) is (segment not in ("sql", "file"))
    for channel in channels:
        assert f"{channel}_batch_size" in dag.params
        assert f"{channel}_rate_limit_per_second" in dag.params
        send = dag.get_task(f"send_{channel}")
        assert send.upstream_task_ids == {"build_audience"}
        assert send.downstream_task_ids == {"summarise"}
    assert dag.get_task("summarise").trigger_rule == "all_done"
    # SMS and push are dry runs (tagged, said in the About); email goes over SMTP.
    dry = [c for c in channels if c != "email"]
    assert sorted(t for t in dag.tags if t.startswith("dry-run")) == sorted(f"dry-run:{c}" for c in dry)
    assert f"**Delivery:** **dry run** on {', '.join(dry)}: nothing is sent there" in (dag.doc_md or "")
    assert "| email | smtp, Connection `campaign_smtp` |" in (dag.doc_md or "")
    assert all(f"| {c} | **dry run** |" in (dag.doc_md or "") for c in dry)
    assert all(dag.params.get_param(f"{c}_batch_size").description.startswith(f"{c} (dry run): ") for c in dry)


def test_weekly_newsletter_schedule(bag: DagBag) -> None:
    """Mondays 09:00 Paris time, described in plain words."""
    dag = bag.get_dag("weekly_newsletter")
    assert dag is not None
    assert dag.timetable.summary == "0 9 * * MON"
    assert str(dag.timetable._timezone.name) == "Europe/Paris"
    assert dag.catchup is False
    assert "At 09:00, only on Monday (`0 9 * * MON`, Europe/Paris)" in (dag.doc_md or "")
    assert dag.owner_links == {"lifecycle-marketing": "mailto:lifecycle@example.com"}
    assert "audience_size" not in dag.params  # its audience is the subscribers table, not a size


def test_shipped_audiences_read_real_sources() -> None:
    """The newsletter queries Connection subscribers_db, the flash sale reads the CSV beside it; only the
    cart-abandonment campaign (the demo and benchmark one) is synthetic, and says so."""
    from campaign_runs.factory.spec import load_spec

    newsletter = load_spec(CAMPAIGNS / "weekly_newsletter.yaml").audience
    assert (newsletter.source, newsletter.conn_id, newsletter.consent_column) == ("sql", "subscribers_db", "opted_in")
    assert ":logical_date" in newsletter.query
    flash = load_spec(CAMPAIGNS / "flash_sale.yaml").audience
    assert (flash.source, flash.format) == ("file", "csv")
    assert flash.url == (CAMPAIGNS / "data" / "flash_sale.csv").resolve().as_uri()
    assert (CAMPAIGNS / "data" / "flash_sale.csv").is_file()
    assert load_spec(CAMPAIGNS / "cart_abandonment.yaml").audience.is_demo
    assert "demo audience (synthetic)" in (CAMPAIGNS / "cart_abandonment.yaml").read_text().splitlines()[0]


def test_broken_yaml_hides_no_other_campaign(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A bad field in one YAML keeps that campaign out, logged with its file and field; the others load."""
    folder = tmp_path / "dags"
    shutil.copytree(DAGS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    broken = folder / "campaigns" / "cart_abandonment.yaml"
    broken.write_text(broken.read_text().replace('cron: "@hourly"', 'cron: "every hour"'))
    typo = folder / "campaigns" / "weekly_newsletter.yaml"
    typo.write_text(typo.read_text().replace("  push:\n", "  pushh:\n"))

    with caplog.at_level(logging.ERROR, logger="campaign_runs.factory.loader"):
        bag = DagBag(dag_folder=str(folder))

    assert sorted(bag.dag_ids) == ["flash_sale"]
    assert bag.import_errors == {}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Campaign file cart_abandonment.yaml is not loaded" in logged
    assert "field 'schedule.cron': 'every hour' is not a valid" in logged
    assert "field 'channels.pushh': unknown channel" in logged


def test_loader_reports_each_broken_file_and_a_misnamed_one(tmp_path: Path) -> None:
    """``load_campaigns`` returns each broken file's error; a file must be named after its campaign id."""
    from campaign_runs.factory.loader import load_campaigns

    shutil.copy(CAMPAIGNS / "flash_sale.yaml", tmp_path / "flash_sale.yaml")
    shutil.copy(CAMPAIGNS / "flash_sale.yaml", tmp_path / "promo.yaml")
    (tmp_path / "bad.yaml").write_text("id: [unclosed\n")
    (tmp_path / ".bad.yaml.tmp.yaml").write_text("not: read")
    namespace: dict[str, Any] = {}

    errors = load_campaigns(tmp_path, namespace)

    assert [dag.dag_id for dag in namespace.values()] == ["flash_sale"]
    assert sorted(errors) == ["bad.yaml", "promo.yaml"]
    assert "invalid YAML" in errors["bad.yaml"]
    assert "field 'id': is 'flash_sale' but the file is named promo.yaml" in errors["promo.yaml"]


def test_a_task_process_parses_only_its_own_campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With Airflow's parsing context set to one DAG, the loader builds that DAG only (and reads no other file)."""
    from campaign_runs.factory.loader import load_campaigns

    for name in ("flash_sale", "weekly_newsletter"):
        shutil.copy(CAMPAIGNS / f"{name}.yaml", tmp_path / f"{name}.yaml")
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "weekly_newsletter")
    namespace: dict[str, Any] = {}

    assert load_campaigns(tmp_path, namespace) == {}
    assert [dag.dag_id for dag in namespace.values()] == ["weekly_newsletter"]


def test_loader_files_pass_airflow_safe_mode_heuristic() -> None:
    """Loader files mention Airflow and DAG, so safe-mode parsing does not skip them."""
    from airflow.utils.file import might_contain_dag_via_default_heuristic

    for loader in CAMPAIGNS.glob("*.py"):
        assert might_contain_dag_via_default_heuristic(str(loader)), loader


def test_restart_conf_passes_params_validation(bag: DagBag) -> None:
    """A restart's conf keys (``campaign_restart_of``, ``campaign_slot``, ``campaign_resend_in_doubt``) are accepted."""
    from airflow.sdk.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, size in (("flash_sale", "sms_batch_size"), ("cart_abandonment", "audience_size")):
        dag = DagSerialization.from_dict(DagSerialization.to_dict(bag.get_dag(dag_id)))  # as the scheduler has it
        conf = {
            size: 10,
            "campaign_restart_of": "manual__1",
            "campaign_slot": {"logical_date": "2026-03-02T10:00:00+00:00"},
            "campaign_resend_in_doubt": True,
        }
        assert dag.params.deep_merge(conf).validate()["campaign_resend_in_doubt"] is True
        with pytest.raises(ParamValidationError):
            dag.params.deep_merge({**conf, size: -1}).validate()


HOSTILE = {
    # The 1 KB definition: nested aliases in audience.criteria, accepted and str()-ed into doc_md before.
    "alias_bomb.yaml": "criteria: &a [x, x, x, x, x, x, x, x, x, x]\nnext: [*a, *a, *a, *a, *a, *a, *a, *a]\n",
    "deep.yaml": "id: deep\naudience: " + "[" * 20_000 + "]" * 20_000 + "\n",
    "nested_settings.yaml": None,  # filled from flash_sale.yaml below: a mapping where a one-line text belongs
    "huge.yaml": "id: huge\ndescription: " + "x" * 300_000 + "\n",
    "not_utf8.yaml": b"id: \xff\xfe\n",
    "twice.yaml": "id: twice\nid: flash_sale\n",
}


def test_a_hostile_file_fails_alone_and_the_others_load(tmp_path: Path) -> None:
    """Aliases, deep nesting, a nested setting, an oversized file and bad bytes are each refused; others load."""
    from campaign_runs.factory.loader import load_campaigns

    shutil.copy(CAMPAIGNS / "flash_sale.yaml", tmp_path / "flash_sale.yaml")
    for name, content in HOSTILE.items():
        if content is None:
            text = (CAMPAIGNS / "flash_sale.yaml").read_text().replace("id: flash_sale", "id: nested_settings")
            content = text.replace("sender: EXAMPLE", "sender: {nested: [1, 2]}", 1)
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    namespace: dict[str, Any] = {}

    errors = load_campaigns(tmp_path, namespace)

    assert [dag.dag_id for dag in namespace.values()] == ["flash_sale"]
    assert sorted(errors) == sorted(HOSTILE)
    assert "anchors (&a) are not allowed" in errors["alias_bomb.yaml"]
    assert "nested deeper than 16 levels" in errors["deep.yaml"]
    assert "field 'channels.sms.sender': must be a non-empty string" in errors["nested_settings.yaml"]
    assert "the limit is 262144" in errors["huge.yaml"]
    assert "invalid YAML" in errors["not_utf8.yaml"]
    assert "duplicate key 'id'" in errors["twice.yaml"]
