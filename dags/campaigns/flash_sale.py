"""Airflow DAG of the campaign declared in flash_sale.yaml beside this file."""

from __future__ import annotations

from campaign_factory import campaign_dag

dag = campaign_dag(__file__)
