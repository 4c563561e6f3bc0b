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
