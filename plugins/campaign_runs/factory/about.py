"""What a campaign DAG says about itself: its tags, its About (``doc_md``) and its run params."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Param

from campaign_runs.factory.schedule import describe_schedule
from campaign_runs.factory.channel_spec import MAX_CONNECTIONS

if TYPE_CHECKING:
    from campaign_runs.factory.spec import CampaignSpec

DEMO_LABEL = "demo audience (synthetic)"


def campaign_tags(spec: CampaignSpec) -> list[str]:
    """The tags the plugin reads: ``campaign``, ``channel:<name>`` per channel, ``audience:<segment>``."""
    tags = ["campaign", *(f"channel:{channel.name}" for channel in spec.channels)]
    tags.append(f"audience:{spec.audience.segment}")
    return tags + [tag for tag in spec.tags if tag not in tags]


def _setting_text(value: Any) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= 80 else text[:77] + "..."


def about_markdown(spec: CampaignSpec) -> str:
    """The human-readable About shown as the DAG's ``doc_md``."""
    schedule = spec.schedule
    when = describe_schedule(schedule.expression or "")
    if schedule.expression:
        when += f" (`{schedule.expression}`, {schedule.timezone})"
    lines = [
        f"### {spec.id}",
        "",
        spec.description,
        "",
        f"**Owner:** {spec.owner} ({spec.owner_email})  ",
        f"**Schedule:** {when}",
        "",
        *audience_lines(spec),
    ]
    lines += ["", "#### Channels", "", "| Channel | Batch size | Rate limit | Sending | Settings |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for channel in spec.channels:
        rate = f"{channel.rate_limit_per_second:g}/s" if channel.rate_limit_per_second else "unlimited"
        sending = f"{channel.connections} connection{'s' if channel.connections > 1 else ''}"
        sending += f", {channel.shards} shards" if channel.shards > 1 else ""
        settings = "<br>".join(f"{key}: {_setting_text(value)}" for key, value in channel.settings.items() if value)
        lines.append(f"| {channel.name} | {channel.batch_size} | {rate} | {sending} | {settings} |")
    return "\n".join(lines) + "\n"


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
        params[f"{channel.name}_batch_size"] = Param(
            channel.batch_size, type="integer", minimum=1, description=f"{channel.name}: messages per batch."
        )
        params[f"{channel.name}_rate_limit_per_second"] = Param(
            channel.rate_limit_per_second,
            type="number",
            minimum=0,
            description=f"{channel.name}: messages per second, 0 for unlimited (shared by its shards).",
        )
        params[f"{channel.name}_connections"] = Param(
            channel.connections,
            type="integer",
            minimum=1,
            maximum=MAX_CONNECTIONS,
            description=f"{channel.name}: connections each channel task sends over at once.",
        )
    return params
