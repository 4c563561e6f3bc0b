"""Markup sent to any FAB page of the plugin (``/pluginsv2``) never comes back unescaped; every answer is nosniff.

The routes are read from the Flask app's URL map (every rule of the plugin's blueprints), so a new page is
covered with no change here. Each is asked with its path parameters filled with a real campaign, run and email,
and with markup, and with markup in every query parameter a page reads (found by recording the reads) and in
ones it does not know. An answer a browser would render (HTML) must hold the markup only escaped; JSON,
plain text and CSV may hold it as is, as every answer carries ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from werkzeug.routing import IntegerConverter

from tests.campaign_runs.pages.fab.test_campaigns import csrf_token, login

pytestmark = pytest.mark.sweep  # inputs, not the database, are the point: run once, on SQLite

MARKUPS = ("<svg onload=alert(1)>", '"><script>alert(1)</script>')
PATH_MARKUPS = ("<svg onload=alert(1)>", '"><script>alert(1)')  # one path segment: no '/'
ALL_MARKUPS = (*MARKUPS, *PATH_MARKUPS)
# Parameters the pages read (the recorder finds the ones read on a page's default path) and one no page knows.
QUERY_NAMES = (
    "page", "q", "sort", "desc", "show_skipped", "mine", "limit", "from", "to", "status", "dag_id", "run_id",
    "mode", "preset", "cron", "timezone", "origin", "note", "x-unknown",
)  # fmt: skip
SHOWN_AS_IS = ("application/json", "text/plain", "text/csv")  # answers no browser renders as a page (nosniff)
PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@dataclass(frozen=True)
class Route:
    """One route of a page host: its method and path pattern, with ``{name}`` for each path parameter."""

    method: str
    pattern: str
    params: tuple[str, ...]
    numeric: frozenset[str] = frozenset()

    def path(self, values: dict[str, str]) -> str:
        """The path with each parameter's value percent-encoded."""
        path = self.pattern
        for name in self.params:
            path = path.replace("{" + name + "}", quote(values[name], safe=""))
        return path


def fab_routes(flask_app: Any, prefix: str = "/pluginsv2") -> list[Route]:
    """Every rule of the plugin's blueprints (of its declared views) in the Flask app, once per method."""
    from campaign_runs.plugin import CampaignRunsPlugin

    plugin = {entry["view"].blueprint.name for entry in CampaignRunsPlugin.appbuilder_views}
    assert plugin <= set(flask_app.blueprints), "the plugin's blueprints are not registered"
    routes = []
    for rule in flask_app.url_map.iter_rules():
        if rule.endpoint.split(".", 1)[0] not in plugin:
            continue
        pattern = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        numeric = frozenset(name for name, conv in rule._converters.items() if isinstance(conv, IntegerConverter))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append(Route(method, prefix + pattern, tuple(rule.arguments), numeric))
    return routes


def mounted(app: Any, prefix: str) -> Any:
    """The app mounted at ``prefix`` of the API server's app (a WSGI app: the one it wraps)."""
    for route in app.routes:
        if getattr(route, "path", None) == prefix:
            inner = route.app
            return getattr(inner, "app", inner)
    raise AssertionError(f"nothing is mounted at {prefix}")


def fills(real: dict[str, str], route: Route) -> Iterator[dict[str, str]]:
    """The route's path values: the real ones, then each markup in every (non-numeric) parameter."""
    yield {name: real.get(name, "cr_campaign") for name in route.params}
    for markup in PATH_MARKUPS:
        yield {name: real.get(name, "1") if name in route.numeric else markup for name in route.params}


def check(response: Any, markups: tuple[str, ...] | list[str]) -> None:
    """Nosniff, no server error, and in a rendered answer no markup but escaped."""
    where = f"{response.request.method} {response.request.url}"
    assert response.headers.get("x-content-type-options") == "nosniff", (where, response.status_code)
    assert response.status_code < 500, (where, response.text[:500])
    kind = response.headers.get("content-type", "")
    if kind.startswith(SHOWN_AS_IS):
        return
    for markup in markups:
        assert markup not in response.text, (where, kind, markup, response.text[:2000])


class ReadNames:
    """The query parameter names requests read, through the recording mappings ``record_reads`` installs."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def recording(self, base: type) -> type:
        """A subclass of the mapping type ``base`` that notes every name looked up."""
        names = self.names

        class Recording(base):  # type: ignore[valid-type,misc]
            def __getitem__(self, key: str) -> Any:
                names.add(key)
                return super().__getitem__(key)

            def __contains__(self, key: object) -> bool:
                names.add(str(key))
                return super().__contains__(key)

            def getlist(self, key: str, *args: Any, **kwargs: Any) -> Any:
                names.add(key)
                return super().getlist(key, *args, **kwargs)

        return Recording


@contextmanager
def record_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Note the query parameter names the pages read, on both hosts."""
    import flask
    import starlette.requests

    reads = ReadNames()
    with monkeypatch.context() as patch:
        patch.setattr(flask.Request, "parameter_storage_class", reads.recording(flask.Request.parameter_storage_class))
        patch.setattr(starlette.requests, "QueryParams", reads.recording(starlette.requests.QueryParams))
        yield reads.names


def send(client: TestClient, method: str, path: str, params: dict[str, str], token: str) -> Any:
    """GET the page, or POST its form with only the CSRF token (no field: nothing is saved)."""
    if method == "GET":
        return client.get(path, params=params)
    return client.post(path, params=params, data={"csrf_token": token})


def sweep(client: TestClient, routes: list[Route], real: dict[str, str], token: str, patch: pytest.MonkeyPatch) -> int:
    """Every route, path fill and query parameter with every markup; the number of requests checked."""
    sent = 0
    for route in routes:
        first, *marked = fills(real, route)
        for values in marked:  # markup in the path, and in a parameter no page reads
            check(send(client, route.method, route.path(values), {"x-unknown": MARKUPS[1]}, token), ALL_MARKUPS)
            sent += 1
        path = route.path(first)
        with record_reads(patch) as read:
            check(send(client, route.method, path, {}, token), ALL_MARKUPS)
        for name in sorted(read | set(QUERY_NAMES)):
            for markup in MARKUPS:
                check(send(client, route.method, path, {name: markup}, token), ALL_MARKUPS)
                sent += 1
    return sent


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private campaigns folder, so New and Configure never touch a shared one."""
    from campaign_runs.settings import get_settings

    path = tmp_path / "campaigns"
    path.mkdir()
    monkeypatch.setenv("AIRFLOW__CAMPAIGN_RUNS__DEFINITIONS_FOLDER", str(path))
    get_settings.cache_clear()
    return path


@pytest.fixture
def real(make_run: Callable[..., str], folder: Path) -> dict[str, str]:
    """Path values that name things that exist: a campaign, a running run, an email, the static file both serve."""
    from campaign_runs import core
    from campaign_runs.core.emails import list_emails
    from campaign_runs.urls import FORM_SCRIPT

    stopped = make_run("cr_campaign", state="running")
    core.perform("stop", "cr_campaign", stopped, actor="admin", note="For an email")
    core.housekeeping_pass()
    emails = list_emails(limit=1)
    assert emails, "stopping a run sent no email"
    return {
        "dag_id": "cr_campaign",
        "run_id": make_run("cr_campaign", state="running"),
        "action": "stop",
        "outbox_id": str(emails[0].id),
        "name": FORM_SCRIPT,
    }


@pytest.fixture
def admin(api_app: Any) -> Iterator[TestClient]:
    with login(api_app, "admin") as client:
        yield client


def test_the_fab_routes_are_found(api_app: Any) -> None:
    patterns = {route.pattern for route in fab_routes(mounted(api_app, "/pluginsv2"))}
    assert {
        "/pluginsv2/campaigns/list",
        "/pluginsv2/campaigns/monitor/{dag_id}/table.csv",
        "/pluginsv2/campaigns/emails/{outbox_id}/resend",
        "/pluginsv2/campaigns/worklist/email",
        "/pluginsv2/campaigns/display/{dag_id}/actions/{action}",
    } <= patterns


def test_markup_in_any_parameter_of_any_fab_page_comes_back_escaped(
    api_app: Any, admin: TestClient, real: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = fab_routes(mounted(api_app, "/pluginsv2"))
    token = csrf_token(admin.get("/pluginsv2/campaigns/worklist").text)
    assert sweep(admin, routes, real, token, monkeypatch) > 500


def test_generated_markup_in_a_fab_page_parameter_comes_back_escaped(
    api_app: Any, admin: TestClient, real: dict[str, str]
) -> None:
    gets = [route for route in fab_routes(mounted(api_app, "/pluginsv2")) if route.method == "GET"]
    paths = [route.path(values) for route in gets for values in fills(real, route)]
    markup = markup_strings()

    @given(path=st.sampled_from(paths), name=st.sampled_from(QUERY_NAMES), value=markup)
    @PROPERTY
    def answered(path: str, name: str, value: tuple[str, str]) -> None:
        text, needle = value
        check(admin.get(path, params={name: text}), [needle, *PATH_MARKUPS])

    answered()


def markup_strings() -> st.SearchStrategy[tuple[str, str]]:
    """``(text, needle)``: text around an HTML tag that runs script, and the tag's start (never in a page as is)."""
    names = st.sampled_from(["svg", "img", "script", "iframe", "a", "body", "x"])
    breaks = st.sampled_from(["", '"', "'", '">', "'>", "</textarea>", "-->", "]]>", "`"])
    junk = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=8)

    def build(before: str, name: str, number: int, after: str) -> tuple[str, str]:
        # The needle is the tag's start: a message that shortens the value still shows it (under 40 characters).
        return f"{before}<{name} onxss{number}=alert({number})>{after}", f"<{name} onxss{number}"

    return st.builds(build, breaks | junk, names, st.integers(0, 999), junk)
