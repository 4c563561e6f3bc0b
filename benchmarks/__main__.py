"""Run every benchmark: ``python -m benchmarks``."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    "benchmarks.plugin_import",
    "benchmarks.pages",
    "benchmarks.stop_latency",
    "benchmarks.throughput",
    "benchmarks.audience",
    "benchmarks.transports",
]

if __name__ == "__main__":
    failed = 0
    for module in BENCHMARKS:
        print(f"\n=== {module}", flush=True)
        failed += subprocess.run([sys.executable, "-m", module], check=False).returncode != 0
    sys.exit(1 if failed else 0)
