"""The one layer that calls Airflow internals: a module per concern.

Airflow's internals move between releases; everything version-sensitive lives here, and the core
(``campaign_runs.core``) reaches Airflow only through these modules (an import-linter contract checks it).
Functions take the caller's session and never commit, except where a docstring says so.
"""
