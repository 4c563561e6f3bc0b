"""Run every benchmark: ``python -m benchmarks``."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = [
    ["benchmarks.plugin_import"],
    ["benchmarks.pages"],
    ["benchmarks.pages", "--postgres"],
    ["benchmarks.stop_latency"],
    ["benchmarks.throughput"],
    ["benchmarks.audience"],
    ["benchmarks.transports"],
]

if __name__ == "__main__":
    failed = 0
    for module, *arguments in BENCHMARKS:
        print(f"\n=== {' '.join([module, *arguments])}", flush=True)
        failed += subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode != 0
    sys.exit(1 if failed else 0)
