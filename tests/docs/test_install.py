"""docs/how-to/install.md: the ``airflow standalone`` commands work as written, each module with its install line."""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterable
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

pytestmark = pytest.mark.static

PAGE = REPO / "docs" / "how-to" / "install.md"
SECTION = "## Trying it with `airflow standalone`"
PROJECT = "campaign-runs"


def standalone_commands() -> list[list[str]]:
    """The commands of the section's shell block, each split as the shell does (comments and ``&`` dropped)."""
    section = PAGE.read_text(encoding="utf-8").split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```bash\n(.*?)^```", section, re.M | re.S)
    assert block, "no shell block in the section"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [[word for word in command if word != "&"] for command in commands if command]


def requested(pip: list[str]) -> list[Requirement]:
    """What a ``pip install`` line asks for (``.`` is this project; ``-c FILE`` only constrains)."""
    words = iter(pip[2:])
    found = []
    for word in words:
        if word in ("-c", "--constraint"):
            next(words)
        elif not word.startswith("-"):
            found.append(Requirement(PROJECT if word == "." else word))
    return found


def pulled_in(requirements: Iterable[Requirement]) -> set[str]:
    """The distributions ``requirements`` install: their dependencies, recursively, as installed here."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            lines = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in lines:
            sub = Requirement(line)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(sub)
    return {name for name, _ in seen}


def pins() -> dict[str, str]:
    """The project's pins (``name==version``) of requirements.txt and requirements-dev.txt."""
    found = {}
    for path in (REPO / "requirements.txt", REPO / "requirements-dev.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            spec = line.split("#", 1)[0].strip()
            if "==" in spec:
                requirement = Requirement(spec)
                found[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return found


def test_every_python_module_the_section_runs_comes_with_its_install_line() -> None:
    commands = standalone_commands()
    pip = [command for command in commands if command[:2] == ["pip", "install"]]
    assert len(pip) == 1, pip
    installed = pulled_in(requested(pip[0]))
    assert PROJECT in installed and "apache-airflow" in installed
    modules = [command[command.index("-m") + 1] for command in commands if command[0] == "python" and "-m" in command]
    assert modules == ["aiosmtpd"]  # the optional mail sink
    distributions = metadata.packages_distributions()
    for module in modules:
        providers = {canonicalize_name(name) for name in distributions.get(module.split(".")[0], [])}
        assert providers & installed, f"`python -m {module}` needs {providers}, which the install line does not install"
        assert importlib.util.find_spec(module) is not None


def test_the_check_sees_a_module_the_install_line_leaves_out() -> None:
    installed = pulled_in([Requirement(PROJECT)])  # the line as it was: the plugin alone
    assert "aiosmtpd" not in installed and "apache-airflow-core" in installed


def test_a_package_the_install_line_names_is_pinned_as_the_project_pins_it() -> None:
    pinned = pins()
    (pip,) = [command for command in standalone_commands() if command[:2] == ["pip", "install"]]
    named = [requirement for requirement in requested(pip) if requirement.name != PROJECT]
    assert named, "the line names the mail sink's package"
    for requirement in named:
        assert str(requirement.specifier) == pinned[canonicalize_name(requirement.name)], requirement
