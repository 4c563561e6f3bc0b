"""The benchmarks' inputs from the repository still hold: a benchmark must not rot unnoticed between runs."""

from __future__ import annotations

from pathlib import Path

from campaign_runs.factory.spec import load_spec

from benchmarks import stop_latency, throughput


def test_stop_latency_copies_files_that_exist() -> None:
    """The shipped campaign and the loader the stop-latency benchmark copies into its DAGs folder."""
    for name in stop_latency.CAMPAIGN_FILES:
        assert (stop_latency.REPO / "dags" / "campaigns" / name).is_file(), name


def test_throughput_campaigns_are_valid_definitions(tmp_path: Path) -> None:
    """Every throughput campaign is a definition the factory accepts, with the one channel it is named after."""
    for dag_id, channel in throughput.CAMPAIGNS.items():
        path = tmp_path / f"{dag_id}.yaml"
        path.write_text(throughput.YAML.format(id=dag_id, channel=channel, population=throughput.POPULATION))
        assert [c.name for c in load_spec(path).channels] == [dag_id.removeprefix("bench_")]
