"""docker-compose.yml and docker/Dockerfile agree with what the product needs (pins, settings, topology)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from campaign_runs.settings import OPTIONS

REPO = Path(__file__).resolve().parents[2]
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
AIRFLOW_SERVICES = {"airflow-init", *AIRFLOW_COMMANDS}
SERVICES = {"postgres", "redis", "mailpit", *AIRFLOW_SERVICES}
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _compose() -> dict[str, Any]:
    """The compose file as data (PyYAML resolves the anchors and ``<<`` merges)."""
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def _services() -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _pins(filename: str) -> dict[str, str]:
    """The ``name==version`` lines of a requirements file, by normalized name."""
    pins: dict[str, str] = {}
    for line in (REPO / filename).read_text().splitlines():
        name, sep, version = line.partition("#")[0].partition("==")
        if sep:
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def _pin(package: str) -> str:
    """The version that requirements.txt pins for ``package``."""
    version = _pins("requirements.txt").get(package)
    assert version, f"requirements.txt does not pin {package}"
    return version


def _default(value: str) -> str:
    """A compose value with each ``${VAR:-default}`` replaced by its default (what an empty .env gives)."""

    def replace(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        raise AssertionError(f"{value!r} has no default")

    return _VARIABLE.sub(replace, value)


def _env(service: str) -> dict[str, str]:
    """A service's environment as strings."""
    environment = _services()[service].get("environment", {})
    assert isinstance(environment, dict), f"{service}: environment must be a mapping"
    return {name: str(value) for name, value in environment.items()}


def _dockerfile() -> str:
    """docker/Dockerfile without comment lines."""
    lines = (REPO / "docker" / "Dockerfile").read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def test_services_are_the_production_topology() -> None:
    """Database, broker, mail catcher, one-shot init and the five Airflow components, nothing else."""
    assert set(_services()) == SERVICES


def test_images_are_pinned_to_the_tested_versions() -> None:
    """The Airflow base image tag is the apache-airflow pin; the other images are pinned too."""
    airflow = _pin("apache-airflow")
    base_images = re.findall(r"^FROM\s+(\S+)", _dockerfile(), re.MULTILINE)
    assert base_images == [f"apache/airflow:{airflow}-python3.11"]
    services = _services()
    assert services["postgres"]["image"] == "postgres:16"
    assert re.fullmatch(r"redis:\d+\.\d+-\w+", services["redis"]["image"])
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+", services["mailpit"]["image"])
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}, name
        assert _default(service["image"]).endswith(f":{airflow}"), name


def test_image_installs_the_package_with_the_pins_as_constraints() -> None:
    """The Dockerfile copies what the build needs and installs the package as the airflow user."""
    dockerfile = _dockerfile()
    copied = " ".join(re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", dockerfile, re.MULTILINE)).split()
    assert sorted(copied) == ["README.md", "plugins/", "pyproject.toml", "requirements.txt"]
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users[-1] == "airflow"
    install = re.search(r"^RUN pip install ([^\\&\n]+)", dockerfile, re.MULTILINE)
    assert install is not None
    assert install[1].split() == [
        "--no-cache-dir",
        "-c",
        "requirements.txt",
        '"apache-airflow==${AIRFLOW_VERSION}"',
        ".",
    ]
    for path in ("requirements.txt", "pyproject.toml", "plugins/campaign_runs/__init__.py"):
        assert (REPO / path).is_file(), path


def test_image_gets_the_runtime_set_not_the_development_tools() -> None:
    """requirements.txt is the runtime set; requirements-dev.txt adds the tools on top and stays out of the image."""
    assert "requirements-dev" not in _dockerfile()
    dev_lines = (REPO / "requirements-dev.txt").read_text().splitlines()
    assert next(line for line in dev_lines if line.strip() and not line.startswith("#")) == "-r requirements.txt"
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert not runtime.keys() & dev.keys(), "a package is pinned in both files"
    assert {"pytest", "ruff", "mypy", "import-linter", "playwright", "aiosmtpd", "schemathesis"} <= dev.keys()
    assert {"apache-airflow", "apache-airflow-providers-fab", "apache-airflow-providers-celery"} <= runtime.keys()


@pytest.mark.parametrize("service", sorted(AIRFLOW_SERVICES))
def test_airflow_settings_match_the_product(service: str) -> None:
    """FAB with cookie sessions (the plugin views need it), Celery, PostgreSQL, Redis, shared secrets."""
    env = _env(service)
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER
    assert env["AIRFLOW__FAB__SESSION_BACKEND"] == "securecookie"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    postgres = _env("postgres")
    database = urlsplit(_default(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    assert (database.scheme, database.hostname, database.username, database.password, database.path) == (
        "postgresql+psycopg2",
        "postgres",
        postgres["POSTGRES_USER"],
        _default(postgres["POSTGRES_PASSWORD"]),
        f"/{postgres['POSTGRES_DB']}",
    )
    assert urlsplit(_default(env["AIRFLOW__CELERY__RESULT_BACKEND"])).hostname == "postgres"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    for secret in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        match = _VARIABLE.fullmatch(env[secret])
        assert match is not None and match["op"] == ":?", f"{secret} must be required from .env"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert _default(env["AIRFLOW__API__BASE_URL"]) == "http://localhost:8080"


def test_every_service_shares_one_airflow_configuration() -> None:
    """The Airflow services differ only in what the worker adds for its shutdown."""
    reference = _env("airflow-apiserver")
    for name in AIRFLOW_SERVICES:
        env = _env(name)
        if name == "airflow-worker":
            assert env.pop("DUMB_INIT_SETSID") == "0"
        assert env == reference, name


def test_every_airflow_variable_names_a_real_option() -> None:
    """No typo or removed option: each ``AIRFLOW__SECTION__KEY`` exists in Airflow's (and providers') config."""
    from airflow.configuration import conf

    described = conf.configuration_description
    for name in _env("airflow-apiserver"):
        if not name.startswith("AIRFLOW__"):
            continue
        section, _, key = name.removeprefix("AIRFLOW__").lower().partition("__")
        assert key in described.get(section, {}).get("options", {}), name


def test_campaign_runs_variables_name_options_that_differ_from_their_defaults() -> None:
    """Each ``AIRFLOW__CAMPAIGN_RUNS__X`` is an option of ``campaign_runs.settings.OPTIONS`` set to a non-default."""
    env = _env("airflow-apiserver")
    ours = {name: value for name, value in env.items() if name.startswith("AIRFLOW__CAMPAIGN_RUNS__")}
    assert ours, "the compose file sets no [campaign_runs] option"
    for name, value in ours.items():
        option = name.removeprefix("AIRFLOW__CAMPAIGN_RUNS__").lower()
        assert option in OPTIONS, f"{name} is not a [campaign_runs] option"
        assert _default(value) != OPTIONS[option][0], f"{name} repeats the default"
    # Links in the emails point where people reach the UI.
    assert env["AIRFLOW__CAMPAIGN_RUNS__BASE_URL"] == env["AIRFLOW__API__BASE_URL"]


def test_emails_go_to_the_mail_catcher() -> None:
    """[smtp] points at Mailpit's SMTP port without TLS; Mailpit's web UI is published on 8025."""
    env = _env("airflow-scheduler")
    mailpit = _services()["mailpit"]
    assert env["AIRFLOW__SMTP__SMTP_HOST"] == "mailpit"
    assert int(env["AIRFLOW__SMTP__SMTP_PORT"]) == 1025
    assert 1025 in mailpit["expose"]
    assert (env["AIRFLOW__SMTP__SMTP_STARTTLS"], env["AIRFLOW__SMTP__SMTP_SSL"]) == ("false", "false")
    assert "@" in _default(env["AIRFLOW__SMTP__SMTP_MAIL_FROM"])
    assert mailpit["ports"] == ["8025:8025"]


@pytest.mark.parametrize(("service", "command"), sorted(AIRFLOW_COMMANDS.items()))
def test_each_component_runs_its_airflow_command(service: str, command: str) -> None:
    """api-server, scheduler, dag-processor, triggerer and the Celery worker each have their service."""
    assert _services()[service]["command"] == command


def test_init_migrates_and_creates_an_admin_with_an_email() -> None:
    """``airflow db migrate`` (Airflow's, FAB's and our tables), then an Admin user with an email address."""
    init = _services()["airflow-init"]
    assert init["command"][:2] == ["bash", "-c"]
    script = [line.strip() for line in init["command"][2].splitlines() if line.strip()]
    assert script[:2] == ["set -euo pipefail", "airflow db migrate"]
    create = " ".join(script[2:]).replace("\\", " ").split()
    assert create[:5] == ["airflow", "users", "create", "--role", "Admin"]
    email = _default(create[create.index("--email") + 1].strip('"'))
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.\w+", email), email
    assert init.get("restart") == "no"


def test_start_order_and_health_checks() -> None:
    """Every long-running service has a health check; Airflow waits for its backing services and for init."""
    services = _services()
    for name, service in services.items():
        if name == "airflow-init":
            continue
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        for backing in ("postgres", "redis", "mailpit"):
            assert depends[backing] == {"condition": "service_healthy"}, (name, backing)
        if name != "airflow-init":
            assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    assert services["airflow-apiserver"]["healthcheck"]["test"][-1] == "http://localhost:8080/api/v2/monitor/health"
    assert services["airflow-scheduler"]["healthcheck"]["test"][-1] == "http://localhost:8974/health"
    assert _env("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_dags_are_mounted_and_workers_scale() -> None:
    """The repo's dags/ is every Airflow service's DAG folder; the worker has no fixed name or host port."""
    services = _services()
    assert (REPO / "dags").is_dir()
    for name in AIRFLOW_SERVICES:
        assert "./dags:/opt/airflow/dags" in services[name]["volumes"], name
    worker = services["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_the_delivery_ledger_is_in_the_compose_postgresql() -> None:
    """Every Airflow service keeps the campaigns' ledger in the compose PostgreSQL through one Connection."""
    env = _env("airflow-worker")
    conn_id = env["AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID"]
    assert conn_id and OPTIONS["ledger_conn_id"][0] == ""
    uri = urlsplit(_default(env[f"AIRFLOW_CONN_{conn_id.upper()}"]))
    postgres = _env("postgres")
    assert (uri.scheme, uri.hostname, uri.port or 5432) == ("postgres", "postgres", 5432)
    assert (uri.username, uri.password) == (postgres["POSTGRES_USER"], _default(postgres["POSTGRES_PASSWORD"]))
    assert uri.path.lstrip("/") == postgres["POSTGRES_DB"]
    for service in AIRFLOW_SERVICES:
        assert _env(service)[f"AIRFLOW_CONN_{conn_id.upper()}"] == env[f"AIRFLOW_CONN_{conn_id.upper()}"], service


def test_the_airflow_connection_uri_gives_the_ledger_its_database() -> None:
    """Airflow parses the compose URI into the fields the ledger connects with."""
    importlib.import_module("tests.dags.conftest")  # puts dags/ on sys.path
    from airflow.sdk import Connection
    from campaign_runs.factory.ledger import connect_args

    env = _env("airflow-worker")
    uri = _default(env["AIRFLOW_CONN_CAMPAIGN_LEDGER"])
    args = connect_args(Connection.from_uri(uri, conn_id="campaign_ledger"))
    assert args == {"host": "postgres", "port": 5432, "dbname": "airflow", "user": "airflow", "password": "airflow"}
