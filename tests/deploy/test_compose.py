"""docker-compose.yml and docker/Dockerfile agree with what the product needs (pins, settings, topology)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
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
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|AUTH")
INIT_DIR = "docker/postgres-init"
INITDB = "/docker-entrypoint-initdb.d"


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


def _resolve(value: str) -> str:
    """A compose value as a filled-in .env gives it: defaults for ``${VAR:-x}``, ``sample-var`` for ``${VAR:?}``."""

    def replace(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        if match["op"] == ":?":
            return f"sample-{match['name'].lower()}"
        raise AssertionError(f"{value!r}: ${{{match['name']}}} has neither a default nor :?")

    return _VARIABLE.sub(replace, value)


def _variables() -> dict[str, set[str]]:
    """Each ``${VAR...}`` outside comments, by name: the operators (``:-``, ``:?``, ``""``) it is used with."""
    found: dict[str, set[str]] = {}
    lines = (REPO / "docker-compose.yml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for match in re.finditer(r"(?<!\$)" + _VARIABLE.pattern, text):  # $${X} is a literal ${X}
        found.setdefault(match["name"], set()).add(match["op"] or "")
    return found


def _env_example() -> dict[str, str]:
    """The uncommented ``NAME=value`` lines of .env.example."""
    lines = (REPO / ".env.example").read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return {name.strip(): value.strip() for name, _, value in pairs}


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
    database = urlsplit(_resolve(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    assert (database.scheme, database.hostname, database.username, database.password, database.path) == (
        "postgresql+psycopg2",
        "postgres",
        postgres["POSTGRES_USER"],
        _resolve(postgres["POSTGRES_PASSWORD"]),
        f"/{postgres['POSTGRES_DB']}",
    )
    assert urlsplit(_resolve(env["AIRFLOW__CELERY__RESULT_BACKEND"])).hostname == "postgres"
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
    """[smtp] points at Mailpit's SMTP port without TLS; Mailpit's web UI is published on loopback's 8025."""
    env = _env("airflow-scheduler")
    mailpit = _services()["mailpit"]
    assert env["AIRFLOW__SMTP__SMTP_HOST"] == "mailpit"
    assert int(env["AIRFLOW__SMTP__SMTP_PORT"]) == 1025
    assert 1025 in mailpit["expose"]
    assert (env["AIRFLOW__SMTP__SMTP_STARTTLS"], env["AIRFLOW__SMTP__SMTP_SSL"]) == ("false", "false")
    assert "@" in _default(env["AIRFLOW__SMTP__SMTP_MAIL_FROM"])
    assert mailpit["ports"] == ["${MAILPIT_BIND:-127.0.0.1}:8025:8025"]


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
    assert services["airflow-apiserver"]["ports"] == ["${CAMPAIGN_RUNS_BIND:-127.0.0.1}:8080:8080"]


def test_the_delivery_ledger_is_in_the_compose_postgresql() -> None:
    """Every Airflow service reaches the ledger in the compose PostgreSQL through one Connection, as its own role."""
    env = _env("airflow-worker")
    conn_id = env["AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID"]
    assert conn_id and OPTIONS["ledger_conn_id"][0] == ""
    raw = env[f"AIRFLOW_CONN_{conn_id.upper()}"]
    uri = urlsplit(_resolve(raw))
    postgres = _env("postgres")
    assert (uri.scheme, uri.hostname, uri.port or 5432) == ("postgres", "postgres", 5432)
    assert (uri.username, uri.path.lstrip("/")) == (postgres["CAMPAIGN_LEDGER_USER"], postgres["CAMPAIGN_LEDGER_DB"])
    # The password is the one the init script gives the role, from .env (no default).
    assert uri.password == _resolve(postgres["CAMPAIGN_LEDGER_PASSWORD"])
    assert [m["op"] for m in _VARIABLE.finditer(raw)] == [":?"]
    for service in AIRFLOW_SERVICES:
        assert _env(service)[f"AIRFLOW_CONN_{conn_id.upper()}"] == raw, service


def test_the_ledger_connection_is_not_the_metadata_superuser() -> None:
    """The ledger's Connection uses neither the metadata database, its owner (a superuser) nor its password."""
    env = _env("airflow-worker")
    postgres = _env("postgres")
    raw = env[f"AIRFLOW_CONN_{env['AIRFLOW__CAMPAIGN_RUNS__LEDGER_CONN_ID'].upper()}"]
    uri = urlsplit(_resolve(raw))
    assert uri.username != postgres["POSTGRES_USER"]
    assert uri.path.lstrip("/") != postgres["POSTGRES_DB"]
    assert uri.password != _resolve(postgres["POSTGRES_PASSWORD"])
    assert "POSTGRES_PASSWORD" not in raw
    metadata = urlsplit(_resolve(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    assert (uri.username, uri.path) != (metadata.username, metadata.path)


def test_the_airflow_connection_uri_gives_the_ledger_its_database() -> None:
    """Airflow parses the compose URI into the fields the ledger connects with: its own database and role."""
    importlib.import_module("tests.dags.conftest")  # puts dags/ on sys.path
    from airflow.sdk import Connection
    from campaign_runs.factory.ledger import connect_args

    env = _env("airflow-worker")
    uri = _resolve(env["AIRFLOW_CONN_CAMPAIGN_LEDGER"])
    args = connect_args(Connection.from_uri(uri, conn_id="campaign_ledger"))
    assert args == {
        "host": "postgres",
        "port": 5432,
        "dbname": "campaign_ledger",
        "user": "campaign_ledger",
        "password": "sample-campaign_ledger_password",
    }


def test_published_ports_bind_loopback_by_default() -> None:
    """Every host port (the UI, Mailpit's web UI) is on 127.0.0.1 unless .env deliberately says otherwise."""
    published = {name: service["ports"] for name, service in _services().items() if "ports" in service}
    assert set(published) == {"airflow-apiserver", "mailpit"}
    for name, ports in published.items():
        for port in ports:
            if isinstance(port, dict):  # long syntax
                host_ip = _default(str(port.get("host_ip", "")))
                assert host_ip == "127.0.0.1", (name, port)
            else:
                assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", _default(str(port))), (name, port)
    # SMTP is for the containers only: exposed on the compose network, never published.
    assert not any(":1025" in str(port) for port in published["mailpit"])


def test_no_password_or_secret_has_a_default() -> None:
    """Passwords, keys and secrets are required from .env (``${VAR:?message}``); none has a default value."""
    secrets = {name: ops for name, ops in _variables().items() if SECRET_NAME.search(name)}
    assert {
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_SECRET_KEY",
        "AIRFLOW_JWT_SECRET",
        "_AIRFLOW_ADMIN_PASSWORD",
        "POSTGRES_PASSWORD",
        "CAMPAIGN_LEDGER_PASSWORD",
        "MAILPIT_UI_PASSWORD",
    } <= set(secrets)
    for name, ops in secrets.items():
        assert ops == {":?"}, f"{name} must be required with ${{{name}:?...}}, not {sorted(ops)}"
    for match in _VARIABLE.finditer((REPO / "docker-compose.yml").read_text()):
        if match["op"] == ":?":
            assert match["arg"].strip(), f"{match['name']}: say what to set"


def test_the_admin_password_comes_from_env() -> None:
    """airflow-init creates the admin with the password of ``_AIRFLOW_ADMIN_PASSWORD``, required: no admin/admin."""
    script = _services()["airflow-init"]["command"][2]
    create = " ".join(script.replace("\\\n", " ").split())
    password = re.search(r'--password "(?P<value>[^"]*)"', create)
    assert password is not None
    match = _VARIABLE.fullmatch(password["value"])
    assert match is not None and (match["name"], match["op"]) == ("_AIRFLOW_ADMIN_PASSWORD", ":?")
    username = re.search(r'--username "(?P<value>[^"]*)"', create)
    assert username is not None and _default(username["value"]) == "admin"


def test_mailpit_web_ui_requires_a_login() -> None:
    """Mailpit's web UI and API (every email) need basic auth, whose password .env must give."""
    auth = _env("mailpit")["MP_UI_AUTH"]
    user, _, password = _resolve(auth).partition(":")
    assert user and password == "sample-mailpit_ui_password"
    assert " " not in _resolve(auth)  # Mailpit reads space-separated user:password pairs


def test_dotenv_is_git_ignored() -> None:
    """.env (the secrets) is git-ignored; .env.example (the template) is not."""
    patterns = [line.strip() for line in (REPO / ".gitignore").read_text().splitlines()]
    assert {".env", "/.env"} & set(patterns), ".gitignore must list .env"
    if (REPO / ".git").exists() and shutil.which("git"):
        check = ["git", "-C", str(REPO), "check-ignore", "--no-index", "-q"]
        assert subprocess.run([*check, ".env"], check=False).returncode == 0, ".env is not ignored"
        assert subprocess.run([*check, ".env.example"], check=False).returncode == 1, ".env.example is ignored"


def test_env_example_names_every_required_variable() -> None:
    """.env.example lists each ``${VAR:?}`` empty (an unedited copy refuses to start) and mentions the optional ones."""
    required = {name for name, ops in _variables().items() if ":?" in ops}
    example = _env_example()
    assert set(example) == required
    assert all(value == "" for value in example.values()), "placeholders only, never a usable secret"
    text = (REPO / ".env.example").read_text()
    for name in _variables():
        assert re.search(rf"^#\s*{name}=|^{name}=", text, re.MULTILINE), f".env.example does not mention {name}"
    assert "token_urlsafe" in text and "Fernet.generate_key" in text


def test_postgres_creates_the_ledger_role_on_first_start() -> None:
    """The postgres service mounts the init folder into initdb.d and gives its script the ledger's names."""
    postgres = _services()["postgres"]
    assert f"./{INIT_DIR}:{INITDB}:ro" in postgres["volumes"]
    folder = REPO / INIT_DIR
    runnable = sorted(p.name for p in folder.iterdir() if re.search(r"\.(sh|sql(\.gz|\.xz|\.zst)?)$", p.name))
    assert runnable == ["10-campaign-ledger.sh", "20-subscribers.sh"], "the image runs each *.sh and *.sql of initdb.d"
    for name in runnable:
        for variable in re.findall(r"\$\{(\w+):\?", (folder / name).read_text()):
            assert variable in _env("postgres"), f"the postgres service does not set {variable} ({name})"
    script = (folder / "10-campaign-ledger.sh").read_text()
    assert '--set metadata_db="$POSTGRES_DB"' in script
    assert "campaign-ledger.psql" in script


def test_the_init_sql_grants_the_ledger_role_only_its_database() -> None:
    """The SQL creates an unprivileged login role; every GRANT is on the ledger's database; PUBLIC loses the rest."""
    sql = (REPO / INIT_DIR / "campaign-ledger.psql").read_text()
    statements = [
        " ".join(statement.split())
        for statement in re.sub(r"--[^\n]*", "", sql).split(";")
        if statement.strip() and not statement.strip().startswith("\\")
    ]
    create_role = next(s for s in statements if s.startswith("CREATE ROLE"))
    assert create_role.startswith('CREATE ROLE :"ledger_role" LOGIN ')
    for attribute in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION", "NOBYPASSRLS"):
        assert attribute in create_role.split()
    assert "PASSWORD :'ledger_password'" in create_role
    grants = [s for s in statements if s.startswith("GRANT")]
    assert grants == ['GRANT CONNECT ON DATABASE :"ledger_db" TO :"ledger_role"']
    assert 'REVOKE ALL ON DATABASE :"ledger_db" FROM PUBLIC' in statements
    assert 'REVOKE ALL ON DATABASE :"metadata_db" FROM PUBLIC' in statements
    assert 'CREATE SCHEMA :"ledger_role" AUTHORIZATION :"ledger_role"' in statements
    assert not any("metadata_db" in s and "ledger_role" in s for s in statements)


def test_the_subscribers_connection_and_its_seed_exist() -> None:
    """Connection subscribers_db (weekly_newsletter's audience) is the compose PostgreSQL's seeded subscribers
    database, read as its own read-only role; flash_sale's CSV reaches every service through the dags mount."""
    from airflow.sdk import Connection
    from campaign_runs.factory.spec import load_spec

    newsletter = load_spec(REPO / "dags" / "campaigns" / "weekly_newsletter.yaml").audience
    name = f"AIRFLOW_CONN_{newsletter.conn_id.upper()}"
    raw = _env("airflow-worker")[name]
    for service in AIRFLOW_SERVICES:
        assert _env(service)[name] == raw, service
    postgres = _env("postgres")
    uri = urlsplit(_resolve(raw))
    assert (uri.scheme, uri.hostname, uri.port) == ("postgres", "postgres", 5432)
    assert (uri.username, uri.path.lstrip("/")) == (postgres["SUBSCRIBERS_DB_USER"], postgres["SUBSCRIBERS_DB"])
    assert uri.password == _resolve(postgres["SUBSCRIBERS_DB_PASSWORD"])
    assert [m["op"] for m in _VARIABLE.finditer(raw)] == [":?"]
    assert uri.username not in (postgres["POSTGRES_USER"], postgres["CAMPAIGN_LEDGER_USER"])
    assert uri.path.lstrip("/") not in (postgres["POSTGRES_DB"], postgres["CAMPAIGN_LEDGER_DB"])
    connection = Connection.from_uri(_resolve(raw), conn_id=newsletter.conn_id)
    assert (connection.conn_type, connection.host, connection.schema) == ("postgres", "postgres", "subscribers")
    # The seed: 20-subscribers.sh runs subscribers.psql, which creates and fills the table and grants SELECT only.
    folder = REPO / INIT_DIR
    assert "subscribers.psql" in (folder / "20-subscribers.sh").read_text()
    sql = (folder / "subscribers.psql").read_text()
    assert "CREATE TABLE public.subscribers (" in sql
    assert "FROM generate_series(1, 3000) AS n" in sql
    assert re.findall(r"^GRANT .*", sql, re.MULTILINE) == [
        'GRANT CONNECT ON DATABASE :"audience_db" TO :"audience_role";',
        'GRANT USAGE ON SCHEMA public TO :"audience_role";',
        'GRANT SELECT ON public.subscribers TO :"audience_role";',
    ]
    flash = load_spec(REPO / "dags" / "campaigns" / "flash_sale.yaml").audience
    assert flash.url.startswith((REPO / "dags").resolve().as_uri() + "/")  # under ./dags:/opt/airflow/dags
