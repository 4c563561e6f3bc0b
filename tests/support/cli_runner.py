"""``airflow campaigns ...`` run in this process through Airflow's own CLI parser (a subprocess costs seconds)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from typing import Any


def run_in_process(args: list[str]) -> tuple[int, str, str]:
    """Parse ``airflow ARGS`` with Airflow's parser and call the command; exit code, stdout and stderr.

    A ``SystemExit`` with a message is printed on stderr with exit code 1, as the interpreter does.
    """
    from airflow.cli import cli_parser

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            parsed = cli_parser.get_parser().parse_args(args)
            parsed.func(parsed)
        except SystemExit as stop:
            code = stop.code
    if isinstance(code, str):
        err.write(code + "\n")
        code = 1
    return int(code or 0), out.getvalue(), err.getvalue()
