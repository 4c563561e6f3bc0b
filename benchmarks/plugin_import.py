"""Plugin import cost: what loading plugins adds to a task process and to the API server, in fresh interpreters.

Every sample is a new ``python`` process with a private AIRFLOW_HOME (this repository's plugins folder and the
installed package's entry point, as in the tests). Each process times its own steps with ``perf_counter``:

- ``import airflow.sdk`` alone (the floor every task process pays);
- task side: ``import airflow.sdk``, then ``get_listener_manager()`` (the Task SDK loads every plugin for its
  listeners); the time and the modules added on top of ``import airflow.sdk``;
- task side without any plugin (control: Airflow's own plugin machinery, our package hidden, empty folder);
- API-server side: ``import airflow.sdk``, then ``plugins_manager.get_fastapi_plugins()`` and
  ``get_flask_plugins()`` (what ``init_plugins`` / ``init_flask_plugins`` call), added on top.

Run with ``python -m benchmarks.plugin_import [--repeat 7]``; prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.report import recorded  # noqa: E402
from tests.support import airflow_env  # noqa: E402

SHOW_MODULES = 30  # list the new modules by name when there are at most this many
WATCHED = ("flask_appbuilder", "flask", "fastapi", "campaign_runs.pages.fab.campaigns", "campaign_runs.api.app")

# Hides the installed distribution, so that no entry point provides the plugin (control scenario).
HIDE_DISTRIBUTION = r"""
import importlib.metadata, importlib_metadata
for _md in (importlib.metadata, importlib_metadata):
    def _hide(real):
        def distributions(*args, **kw):
            return (d for d in real(*args, **kw) if d.metadata["Name"].replace("_", "-").lower() != "campaign-runs")
        return distributions
    _md.distributions = _hide(_md.distributions)
"""

PROBE = r"""
import json, sys, time
{prelude}
started = time.perf_counter()
import airflow.sdk
sdk_done = time.perf_counter()
before = set(sys.modules)
{step}
finished = time.perf_counter()
new = sorted(set(sys.modules) - before)
print(json.dumps({{
    "sdk": sdk_done - started,
    "added": finished - sdk_done,
    "new": new,
    "all": sorted(sys.modules),
    "check": check,
}}))
"""

TASK_STEP = """
from airflow.sdk.listener import get_listener_manager
manager = get_listener_manager()
check = sorted({impl.plugin_name for impl in manager.hook.on_starting.get_hookimpls()})
"""

API_STEP = """
from airflow import plugins_manager
apps, _ = plugins_manager.get_fastapi_plugins()
_, views, _ = plugins_manager.get_flask_plugins()
check = [a["url_prefix"] for a in apps] + [type(v["view"]).__name__ for v in views]
"""

SCENARIOS: dict[str, tuple[str, str, bool]] = {
    # name: (step, prelude, empty plugins folder)
    "import airflow.sdk": ("check = []", "", False),
    "task side (get_listener_manager)": (TASK_STEP, "", False),
    "task side, no plugins (control)": (TASK_STEP, HIDE_DISTRIBUTION, True),
    "api-server side (fastapi + flask plugins)": (API_STEP, "", False),
}


def probe(step: str, prelude: str, env: dict[str, str]) -> dict[str, Any]:
    """One fresh interpreter: its timings, new modules and what it registered."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(prelude=prelude, step=step)],
        env=env,
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        sys.exit(f"probe failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def watched(modules: list[str]) -> str:
    """Which of the watched modules are among ``modules``."""
    present = set(modules)
    return ", ".join(f"{name}={'yes' if name in present else 'no'}" for name in WATCHED)


def main() -> None:
    """Time every scenario, print medians and the modules each pulled in."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per scenario (median reported)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="campaign-runs-bench-"))
    empty_plugins = home / "empty-plugins"
    empty_plugins.mkdir()
    env = {**os.environ, **airflow_env.environment(home)}

    results: dict[str, dict[str, Any]] = {}
    for name, (step, prelude, empty) in SCENARIOS.items():
        scenario_env = {**env, "AIRFLOW__CORE__PLUGINS_FOLDER": str(empty_plugins)} if empty else env
        probe(step, prelude, scenario_env)  # warm-up: bytecode caches, file system caches
        samples = [probe(step, prelude, scenario_env) for _ in range(args.repeat)]
        results[name] = {
            "sdk": statistics.median(s["sdk"] for s in samples),
            "added": statistics.median(s["added"] for s in samples),
            "new": samples[-1]["new"],
            "all": samples[-1]["all"],
            "check": samples[-1]["check"],
        }

    print(f"median of {args.repeat} fresh processes per scenario (Python {sys.version.split()[0]})")
    print(f"{'scenario':44} {'import airflow.sdk ms':>22} {'adds ms':>9} {'new modules':>12}")
    for name, r in results.items():
        added = "" if name == "import airflow.sdk" else f"{r['added'] * 1000:9.0f}"
        count = "" if name == "import airflow.sdk" else f"{len(r['new']):12d}"
        print(f"{name:44} {r['sdk'] * 1000:22.0f} {added:>9} {count:>12}")
    for name, r in results.items():
        if name == "import airflow.sdk":
            print(f"  {name}: already imported: {watched(r['all'])}")
            continue
        print(f"  {name}: pulled in: {watched(r['new'])}; registered: {r['check']}")
        if 0 < len(r["new"]) <= SHOW_MODULES:
            print(f"    new modules: {' '.join(r['new'])}")

    sdk = results["import airflow.sdk"]["sdk"]
    task = results["task side (get_listener_manager)"]["added"]
    control = results["task side, no plugins (control)"]["added"]
    api = results["api-server side (fastapi + flask plugins)"]["added"]
    print(
        f"ratio: task-side plugin loading adds {task * 1000:.0f} ms = {task / sdk:.2f}x import airflow.sdk "
        f"(target <= 150 ms); {(task - control) * 1000:+.0f} ms over Airflow with no plugins; "
        f"{task / api:.2f}x the api-server side"
    )


if __name__ == "__main__":
    with recorded("plugin_import"):
        main()
