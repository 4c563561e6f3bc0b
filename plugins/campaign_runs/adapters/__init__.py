"""Calls into Airflow's internals for the core and the edges: a module per concern.

Airflow's internals move between releases; what the core and the edges need of them lives here. The core and
the domain reach Airflow only through these modules, and the edges only through the ones for identity, API
security and the CLI (import-linter contracts in pyproject.toml check both); ``plugin``, ``listeners``,
``tables``, ``db_manager``, ``settings`` and the factory import Airflow themselves.
Functions take the caller's session and never commit, except where a docstring says so.
"""
