"""Airflow DAG of the campaign declared in weekly_newsletter.yaml beside this file."""

from __future__ import annotations

from campaign_factory import campaign_dag

dag = campaign_dag(__file__)
