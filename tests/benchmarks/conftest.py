"""The benchmarks run the campaign factory from ``dags/``: put it on ``sys.path`` as the DAG tests do."""

from __future__ import annotations

import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"

if str(DAGS) not in sys.path:
    sys.path.insert(0, str(DAGS))
