"""benchmarks.audience measures the shipped newsletter's query, on a table with the columns that query reads."""

from __future__ import annotations

from pathlib import Path

from campaign_runs.factory.spec import load_spec

from benchmarks import audience

NEWSLETTER = Path(audience.REPO) / "dags" / "campaigns" / "weekly_newsletter.yaml"


def test_the_benchmark_runs_the_shipped_newsletter_query() -> None:
    """Same text (whitespace aside) as the YAML's ``audience.query``; ours maps the id as the YAML does."""
    spec = load_spec(NEWSLETTER).audience
    assert " ".join(audience.QUERY.split()) == " ".join(spec.query.split())
    assert spec.columns == {"id": "subscriber_id"} and spec.consent_column == "opted_in"
    for column in ("subscriber_id", "email", "first_name", "opted_in", "push_token", "joined"):
        assert f"{column} " in audience.CREATE, column


def test_a_measured_child_prints_only_its_figures(tmp_path: Path) -> None:
    """The child the benchmark starts for each measurement ends its output with its JSON and writes no results."""
    import json
    import os
    import subprocess
    import sys

    from tests.support.ledger_db import ledger_database

    with ledger_database("bench_child") as database:
        audience.create_table(database, 1000)
        address = audience.server()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "home"),
            "CAMPAIGN_RUNS_BENCH_RESULTS": str(tmp_path / "results"),
            f"AIRFLOW_CONN_{audience.CONN_ID.upper()}": (
                f"postgres://{address['user']}@{address['host']}:{address['port']}/{database}"
            ),
        }
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.audience", "--child", database, "--limit", "1000"],
            cwd=audience.REPO, env=env, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 1000 and figures["skipped"]["email no_consent"] == 50
    assert not (tmp_path / "results").exists()
