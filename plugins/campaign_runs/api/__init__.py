"""The JSON API (FastAPI, under ``/campaign-runs``): ``app`` assembles it, a module per resource adds its routes."""
