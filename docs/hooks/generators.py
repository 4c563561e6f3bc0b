"""The Markdown of the generated reference pages, each built from the code it describes (see reference.py)."""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs" / "benchmarks" / "results"
MIGRATIONS = REPO / "plugins" / "campaign_runs" / "migrations" / "versions"
# Each benchmark module and the results file it writes (docs/benchmarks/results/<name>.md).
BENCHMARKS = {  # results file -> the command that writes it
    "audience": "audience",
    "pages": "pages",
    "pages-postgres": "pages --postgres",
    "plugin_import": "plugin_import",
    "stop_latency": "stop_latency",
    "throughput": "throughput",
    "transports": "transports",
}
CODE_SPAN = re.compile(r"(`[^`]*`)")


def cell(text: Any) -> str:
    """Text made safe for one table cell: one line, pipes escaped, HTML brackets escaped outside code spans."""
    parts = CODE_SPAN.split(" ".join(str(text).split()))
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(part.replace("|", "\\|"))
        else:
            out.append(part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|"))
    return "".join(out)


def code(value: Any) -> str:
    """A value as an inline code span (empty when there is none)."""
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table."""
    names = list(header)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# The YAML schema, from the JSON Schema (campaign_runs.core.definition_schema).


def _type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " or ".join(code(v) for v in schema["enum"])
    if "const" in schema:
        return code(schema["const"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and "items" in schema:
        kind = f"array of {_type(schema['items'])}"
    return str(kind)


def _limits(schema: dict[str, Any]) -> str:
    words = {
        "minimum": "≥",
        "exclusiveMinimum": ">",
        "maximum": "≤",
        "minLength": "length ≥",
        "maxLength": "length ≤",
        "minProperties": "entries ≥",
        "maxProperties": "entries ≤",
    }
    limits = []
    for key, word in words.items():
        if key in schema:
            limits.append("not empty" if (key, schema[key]) == ("minLength", 1) else f"{word} {schema[key]}")
    if "pattern" in schema:
        limits.append("not blank" if schema["pattern"] == r"\S" else f"matches {code(schema['pattern'])}")
    return ", ".join(limits)


def _is(name: str, schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{name}` is {code(schema['const'])}"
    return f"`{name}` is " + " or ".join(code(v) for v in schema.get("enum", []))


def _condition(condition: dict[str, Any]) -> str:
    """An ``if`` in words."""
    if "anyOf" in condition:
        return " or ".join(_condition(alternative) for alternative in condition["anyOf"])
    if "not" in condition:
        return " and ".join(f"`{name}` is left out" for name in condition["not"].get("required", []))
    properties = condition.get("properties", {})
    words = [_is(name, sub) for name, sub in properties.items()]
    words += [f"`{name}` is given" for name in condition.get("required", []) if name not in properties]
    return " and ".join(words) or "always"


def _rule(rule: dict[str, Any]) -> str:
    """One ``if``/``then`` of an ``allOf`` in words."""
    then = rule.get("then", {})
    needs = [_is(name, sub) for name, sub in then.get("properties", {}).items()]
    required = [name for name in then.get("required", []) if name not in then.get("properties", {})]
    if required:
        needs.append(f"requires `{'`, `'.join(required)}`")
    refused = [name for alt in then.get("not", {}).get("anyOf", []) for name in alt.get("required", [])]
    if refused:
        needs.append(f"refuses `{'`, `'.join(refused)}`")
    return f"- when {_condition(rule.get('if', {}))}: {'; '.join(needs) or code(json.dumps(then))}"


def _object(path: str, schema: dict[str, Any], level: int) -> Iterator[str]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    yield f"{'#' * level} `{path}`\n"
    if schema.get("description"):
        yield cell(schema["description"]) + "\n"
    if properties:
        rows = [
            (
                f"`{name}`",
                _type(sub),
                "yes" if name in required else "",
                code(sub.get("default")),
                _limits(sub),
                sub.get("description", ""),
            )
            for name, sub in properties.items()
        ]
        yield table(("field", "type", "required", "default", "limits", "meaning"), rows) + "\n"
    if schema.get("additionalProperties") is False:
        yield "No other field is accepted.\n"
    rules = [_rule(rule) for rule in schema.get("allOf", []) if "if" in rule]
    if rules:
        yield "Rules:\n\n" + "\n".join(rules) + "\n"
    for name, sub in properties.items():
        if sub.get("type") == "object" and "properties" in sub:
            yield from _object(f"{path}.{name}", sub, min(level + 1, 4))


def yaml_schema_markdown() -> str:
    """Every field of a campaign definition, then the JSON Schema itself."""
    from campaign_runs.core.definition_schema import definition_schema

    schema = definition_schema()
    parts = [
        cell(schema.get("description", "")) + "\n",
        "Required at the top level: " + ", ".join(f"`{n}`" for n in schema.get("required", [])) + ".\n",
    ]
    for name, sub in schema["properties"].items():
        if sub.get("type") == "object" and "properties" in sub:
            parts.extend(_object(name, sub, 2))
    top = {k: v for k, v in schema["properties"].items() if not (v.get("type") == "object" and "properties" in v)}
    parts.insert(
        2,
        table(
            ("field", "type", "default", "limits", "meaning"),
            [
                (f"`{n}`", _type(s), code(s.get("default")), _limits(s), s.get("description", ""))
                for n, s in top.items()
            ],
        )
        + "\n",
    )
    parts.append(
        "## The JSON Schema\n\nAs `airflow campaigns schema` and `GET /campaign-runs/definitions/schema` "
        "give it:\n\n```json\n" + json.dumps(schema, indent=2) + "\n```\n"
    )
    return "\n".join(parts)


# The CLI, from the argparse parsers Airflow builds from the provider's command declarations.


def _parser(prog: str, command: Any) -> argparse.ArgumentParser:
    formatter = functools.partial(argparse.HelpFormatter, width=100)
    parser = argparse.ArgumentParser(prog=prog, add_help=False, formatter_class=formatter)
    for arg in command.args:
        arg.add_to_parser(parser)
    return parser


def _option_rows(parser: argparse.ArgumentParser) -> Iterator[tuple[str, ...]]:
    for action in parser._actions:
        flags = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.metavar or action.dest}`"
        choices = ", ".join(f"`{c}`" for c in action.choices) if action.choices else ""
        default = (
            ""
            if action.default in (None, False, argparse.SUPPRESS) or action.option_strings == []
            else (code(action.default))
        )
        yield (
            flags,
            "yes" if action.required or not action.option_strings else "",
            default,
            choices,
            str(action.help or "").replace("%%", "%"),
        )


def _commands(prefix: str, commands: Iterable[Any]) -> Iterator[str]:
    for command in commands:
        name = f"{prefix} {command.name}"
        if hasattr(command, "subcommands"):
            yield from _commands(name, command.subcommands)
            continue
        parser = _parser(name, command)
        yield f"### `{name}`\n\n{cell(command.help)}\n"
        if command.description and command.description != command.help:
            yield cell(command.description) + "\n"
        usage = [line.removeprefix("usage: ").removeprefix(" " * 7) for line in parser.format_usage().splitlines()]
        yield "```\n" + "\n".join(usage).strip() + "\n```\n"
        rows = list(_option_rows(parser))
        if rows:
            yield table(("argument", "required", "default", "choices", "meaning"), rows) + "\n"


def cli_markdown() -> str:
    """Every ``airflow campaigns`` command with its usage and arguments."""
    from campaign_runs.cli.commands import get_cli_commands

    parts = []
    for group in get_cli_commands():
        parts.append(f"## `airflow {group.name}`\n\n{cell(group.help)}\n")
        parts.append(
            table(
                ("command", "what it does"),
                [
                    (
                        f"[`{c.name}`](#airflow-{group.name}-{c.name})"
                        if not hasattr(c, "subcommands")
                        else f"`{c.name} ...`",
                        c.help,
                    )
                    for c in group.subcommands
                ],
            )
            + "\n"
        )
        parts.extend(_commands(f"airflow {group.name}", group.subcommands))
    return "\n".join(parts)


# The REST API, from the FastAPI app's OpenAPI document.


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    return _type(schema)


def _operation(path: str, method: str, operation: dict[str, Any]) -> Iterator[str]:
    yield f"### {method.upper()} `{path}`\n\n**{cell(operation.get('summary', ''))}**\n"
    if operation.get("description"):
        yield cell(operation["description"]) + "\n"
    parameters = operation.get("parameters", [])
    if parameters:
        yield (
            table(
                ("parameter", "in", "required", "type", "meaning"),
                [
                    (
                        f"`{p['name']}`",
                        p["in"],
                        "yes" if p.get("required") else "",
                        _schema_name(p.get("schema", {})),
                        p.get("description", ""),
                    )
                    for p in parameters
                ],
            )
            + "\n"
        )
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body:
        yield f"Body: {_schema_name(body)}\n"
    rows = []
    for status, response in operation.get("responses", {}).items():
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        rows.append((f"`{status}`", _schema_name(schema) if schema else "", response.get("description", "")))
    yield table(("status", "body", "when"), rows) + "\n"


def _component(name: str, schema: dict[str, Any]) -> Iterator[str]:
    yield f"### {name}\n"
    if schema.get("description"):
        yield cell(schema["description"]) + "\n"
    if "enum" in schema:
        yield "One of " + ", ".join(code(v) for v in schema["enum"]) + ".\n"
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        yield (
            table(
                ("field", "type", "required", "meaning"),
                [
                    (f"`{field}`", _schema_name(sub), "yes" if field in required else "", sub.get("description", ""))
                    for field, sub in properties.items()
                ],
            )
            + "\n"
        )


def rest_markdown() -> str:
    """Every route of the plugin's FastAPI app, then every schema its bodies use."""
    from campaign_runs.api.app import app
    from campaign_runs.plugin import CampaignRunsPlugin

    prefix = CampaignRunsPlugin.fastapi_apps[0]["url_prefix"]
    document = app.openapi()
    parts = [
        f"Mounted at `{prefix}` on Airflow's API server; the document itself is `{prefix}/openapi.json` "
        f"({cell(document['info']['title'])}, version {document['info']['version']}).\n",
        cell(document["info"].get("description", "")) + "\n",
        "## Routes\n",
    ]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parts.extend(_operation(prefix + path, method, operation))
    parts.append("## Schemas\n")
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        if name == "CampaignDefinition":
            parts.append(f"### {name}\n\nThe campaign definition: see [the YAML schema](yaml-schema.md).\n")
            continue
        parts.extend(_component(name, schema))
    return "\n".join(parts)


# Configuration, from the provider info Airflow reads.


def configuration_markdown() -> str:
    """The ``[campaign_runs]`` options as the provider info declares them."""
    from campaign_runs.provider_info import get_provider_info

    sections = get_provider_info()["config"]
    parts = []
    for section, body in sections.items():
        parts.append(f"## `[{section}]`\n\n{cell(body['description'])}\n")
        parts.append(
            table(
                ("option", "type", "default", "environment variable", "meaning"),
                [
                    (
                        f"`{name}`",
                        option["type"],
                        code(option["default"]) or "(empty)",
                        f"`AIRFLOW__{section.upper()}__{name.upper()}`",
                        option["description"]
                        + (" (sensitive: masked in Airflow's config views)" if option.get("sensitive") else ""),
                    )
                    for name, option in body["options"].items()
                ],
            )
            + "\n"
        )
    return "\n".join(parts)


# The migrations `airflow db migrate` runs, and the benchmark result files.


def migrations_markdown() -> str:
    """The plugin's alembic revisions, oldest first, each with the first line of its docstring."""
    rows = []
    for path in sorted(MIGRATIONS.glob("[0-9]*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"))
        values = {
            target.id: node.value.value
            for node in module.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        doc = (ast.get_docstring(module) or "").splitlines()[0]
        rows.append((f"`{values['revision']}`", code(values.get("down_revision")) or "(first)", doc))
    return table(("revision", "after", "what it changes"), rows) + "\n"


def benchmark_results_markdown() -> str:
    """A link to each benchmark's latest results file, or how to make it."""
    rows = []
    for name, command in BENCHMARKS.items():
        results = RESULTS / f"{name}.md"
        found = f"[results/{name}.md](results/{name}.md)" if results.is_file() else "not generated yet: run the command"
        rows.append((f"`benchmarks.{name.split('-')[0]}`", f"`python -m benchmarks.{command}`", found))
    return table(("benchmark", "command", "latest results"), rows) + "\n"


def statement_counts_markdown() -> str:
    """The SQL statements each page costs, from the file the query-count test asserts exactly."""
    counts = json.loads((REPO / "docs" / "benchmarks" / "statements.json").read_text(encoding="utf-8"))
    rows = [(entry["page"], entry["statements"]) for name, entry in counts.items() if not name.startswith("_")]
    return table(("page", "SQL statements per request"), rows) + "\n"


def version_markdown() -> str:
    """The package's version (``campaign_runs.__version__``), as the provider info and the OpenAPI document say it."""
    from campaign_runs import __version__

    return f"`{__version__}`"
