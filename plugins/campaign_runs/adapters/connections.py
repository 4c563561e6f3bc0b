"""How the plugin's processes look Airflow Connections up: as a server does, the metadata DB included."""

from __future__ import annotations

import os

PROCESS_CONTEXT = "_AIRFLOW_PROCESS_CONTEXT"


def use_server_secrets() -> None:
    """Look Connections up as Airflow's API server and ``airflow connections get`` do.

    Outside a task, the Task SDK's lookup (the one audience sources use) reads environment variables and
    secrets backends only, unless the process says it is a server: then the metadata DB's Connections too.
    A task or parsing process ("client") is left as it is.
    """
    if os.environ.get(PROCESS_CONTEXT) != "client":
        os.environ[PROCESS_CONTEXT] = "server"
