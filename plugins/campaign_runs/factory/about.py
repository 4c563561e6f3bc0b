"""What a campaign DAG says about itself: its tags, its About (``doc_md``) and its run params."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param

from campaign_runs.factory.channel_spec import DRY_RUN_LABEL, MAX_CONNECTIONS
from campaign_runs.factory.channels import ChannelAdapter
from campaign_runs.factory.schedule import describe_schedule

if TYPE_CHECKING:
    from campaign_runs.factory.channel_spec import ChannelSpec
    from campaign_runs.factory.spec import CampaignSpec

DEMO_LABEL = "demo audience (synthetic)"
DRY_RUN_TAG = "dry-run"  # every channel is a dry run; ``dry-run:<channel>`` marks each channel that is one
SINK_TEXT = "messages are written to a local JSON-lines file"


def campaign_tags(spec: CampaignSpec) -> list[str]:
    """The tags the plugin reads: ``campaign``, ``channel:<name>`` per channel, ``audience:<segment>``, dry runs.

    ``dry-run:<name>`` marks each channel that is a dry run, and ``dry-run`` a campaign whose every channel is.
    """
    tags = ["campaign", *(f"channel:{channel.name}" for channel in spec.channels)]
    tags.append(f"audience:{spec.audience.segment}")
    tags += [DRY_RUN_TAG] if spec.dry_run else []
    tags += [f"{DRY_RUN_TAG}:{channel.name}" for channel in spec.channels if channel.dry_run]
    return tags + [tag for tag in spec.tags if tag not in tags]


MARKDOWN = re.compile(r"([\\`*_\[\]<>|&~])")  # what could make a setting's text markup: escaped, shown as is


def _setting_text(value: Any) -> str:
    """A setting as text in the About: one line, at most 80 characters, every Markdown or HTML character escaped."""
    text = " ".join(str(value).split())
    text = text if len(text) <= 80 else text[:79] + "…"
    return MARKDOWN.sub(r"\\\1", text)


def about_markdown(spec: CampaignSpec) -> str:
    """The human-readable About shown as the DAG's ``doc_md``."""
    schedule = spec.schedule
    when = describe_schedule(schedule.expression or "")
    if schedule.expression:
        when += f" (`{schedule.expression}`, {schedule.timezone})"
    delivery = delivery_lines(spec)
    lines = [
        f"### {spec.id}",
        "",
        spec.description,
        "",
        f"**Owner:** {spec.owner} ({spec.owner_email})  ",
        f"**Schedule:** {when}" + ("  " if delivery else ""),  # a Markdown line break before the delivery line
        *delivery,
        "",
        *audience_lines(spec),
    ]
    lines += ["", "#### Channels", "", "| Channel | Delivery | Batch size | Rate limit | Sending |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for channel in spec.channels:
        rate = f"{channel.rate_limit_per_second:g}/s" if channel.rate_limit_per_second else "unlimited"
        sending = f"{channel.connections} connection{'s' if channel.connections > 1 else ''}"
        sending += f", {channel.shards} shards" if channel.shards > 1 else ""
        how = delivery_cell(channel)
        lines.append(f"| {channel.name} | {how} | {channel.batch_size} | {rate} | {sending} |")
    return "\n".join(lines + settings_lines(spec)) + "\n"


def settings_lines(spec: CampaignSpec) -> list[str]:
    """Each channel's settings under the table, one per line (a table cell holds no line break without HTML)."""
    lines: list[str] = []
    for channel in spec.channels:
        settings = [f"- {key}: {_setting_text(value)}" for key, value in channel.settings.items() if value]
        lines += ["", f"##### Settings of {channel.name}", "", *settings] if settings else []
    return lines


def connection_id(channel: ChannelSpec) -> str:
    """The Connection the channel's transport uses: its ``conn_id``, else the transport's default ("" for none)."""
    if channel.conn_id:
        return channel.conn_id
    adapter = ChannelAdapter.transports.get((channel.name, channel.transport))
    return adapter.default_conn_id if adapter is not None else ""


def delivery_cell(channel: ChannelSpec) -> str:
    """How a channel delivers, for the About's table: ``smtp, Connection `campaign_smtp```, ``**dry run**``."""
    conn_id = connection_id(channel)
    connection = f", Connection `{conn_id}`" if conn_id else ""
    if not channel.dry_run:
        return f"{channel.delivery_label}{connection}"
    return f"**{channel.delivery_label}**{connection + ' (not used)' if connection else ''}"


def delivery_lines(spec: CampaignSpec) -> list[str]:
    """The About's delivery line when a channel is a dry run (none when every channel is live)."""
    dry = [channel.name for channel in spec.channels if channel.dry_run]
    if not dry:
        return []
    if spec.dry_run:
        why = "`delivery: dry_run` on the campaign" if spec.delivery == "dry_run" else "every channel is one"
        return [f"**Delivery:** **{DRY_RUN_LABEL}** ({why}): nothing is sent, {SINK_TEXT}"]
    live = ", ".join(f"{c.name} over {c.delivery_label}" for c in spec.channels if not c.dry_run)
    return [f"**Delivery:** **{DRY_RUN_LABEL}** on {', '.join(dry)}: nothing is sent there, {SINK_TEXT}; {live}"]


def audience_lines(spec: CampaignSpec) -> list[str]:
    """The About's audience section: where recipients come from, and a synthetic audience said to be one."""
    audience = spec.audience
    if not audience.is_demo:
        where = (
            f"SQL query on Connection `{audience.conn_id}`"
            if audience.source == "sql"
            else f"{audience.format.upper()} file `{audience.url}`"
            + (f" (Connection `{audience.conn_id}`)" if audience.conn_id else "")
        )
        lines = [f"#### Audience: {where}", "", audience.description or "Read once per run into its snapshot.", ""]
        lines.append("- Read once per slot into a snapshot; a restart reaches the same people")
        consent = [audience.consent_column] + [
            f"{c.consent_column} ({c.name})" for c in spec.channels if c.consent_column
        ]
        lines += [f"- Consent: {', '.join(c for c in consent if c)}"] if any(consent) else []
        lines += (
            [f"- Columns: {', '.join(f'{k} = {v}' for k, v in audience.columns.items())}"] if audience.columns else []
        )
        return lines
    lines = [
        f"#### Audience: `{audience.segment}`, {DEMO_LABEL}",
        "",
        audience.description or "Synthetic segment.",
        "",
        f"- **{DEMO_LABEL.capitalize()}**: generated recipients at example.com, for examples and benchmarks",
        f"- Recipients per run: {audience.size:,} (param `audience_size`), population {audience.population:,}",
        "- A different sample of the population each slot"
        if audience.rotate_per_slot
        else "- Same recipients every slot",
    ]
    return lines + [f"- {key}: {_setting_text(value)}" for key, value in audience.criteria.items()]


def campaign_params(spec: CampaignSpec) -> dict[str, Param]:
    """Run configuration with defaults; a run's conf overrides them."""
    params: dict[str, Param] = {}
    if spec.audience.is_demo:
        params["audience_size"] = Param(
            spec.audience.size,
            type="integer",
            minimum=0,
            maximum=spec.audience.population,
            description="Recipients in this run's audience.",
        )
    for channel in spec.channels:
        name = f"{channel.name} ({DRY_RUN_LABEL})" if channel.dry_run else channel.name  # shown in Trigger's form
        params[f"{channel.name}_batch_size"] = Param(
            channel.batch_size, type="integer", minimum=1, description=f"{name}: messages per batch."
        )
        params[f"{channel.name}_rate_limit_per_second"] = Param(
            channel.rate_limit_per_second,
            type="number",
            minimum=0,
            description=f"{name}: messages per second, 0 for unlimited (shared by its shards).",
        )
        params[f"{channel.name}_connections"] = Param(
            channel.connections,
            type="integer",
            minimum=1,
            maximum=MAX_CONNECTIONS,
            description=f"{name}: connections each channel task sends over at once.",
        )
    return params
