"""The campaign YAML the README and the docs show is what the factory accepts: each block, parsed as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from campaign_runs.factory.spec import parse_spec

from tests.conftest import REPO

pytestmark = pytest.mark.static

BLOCK = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.M | re.S)
PAGES = [
    REPO / "README.md",
    REPO / "dags" / "README.md",
    *sorted((REPO / "docs" / "tutorial").glob("*.md")),
    *sorted((REPO / "docs" / "how-to").glob("*.md")),
]
# A fragment (only channels, or only an audience) is checked inside this campaign.
BASE: dict[str, Any] = {
    "id": "docs_example",
    "description": "A documentation example.",
    "owner": "docs",
    "owner_email": "docs@example.com",
    "schedule": {"cron": None, "start_date": "2026-01-01"},
    "audience": {"segment": "docs", "size": 1, "population": 1},
    "channels": {"email": {"subject": "Hi", "body": "Hello"}},
}


def examples() -> list[Any]:
    """Every YAML block of the pages that is a campaign or its channels or audience, with where it is."""
    found = []
    for path in PAGES:
        for number, (indent, block) in enumerate(BLOCK.findall(path.read_text(encoding="utf-8")), 1):
            data = yaml.safe_load(textwrap.dedent(block) if indent else block)
            if isinstance(data, dict) and ({"id", "channels", "audience"} & set(data)):
                found.append(pytest.param(data, id=f"{path.relative_to(REPO)}#{number}"))
    return found


@pytest.mark.parametrize("data", examples())
def test_the_example_is_a_valid_campaign(data: dict[str, Any], tmp_path: Path) -> None:
    document = data if "id" in data else {**BASE, **data}
    spec = parse_spec(document, tmp_path / f"{document['id']}.yaml")
    assert spec.id == document["id"]
    assert sorted(channel.name for channel in spec.channels) == sorted(document["channels"])


def test_the_tutorials_and_the_readme_hold_examples() -> None:
    ids = {param.id.split("#")[0] for param in examples()}
    assert {"README.md", "docs/tutorial/first-campaign.md", "docs/how-to/connections.md"} <= ids
