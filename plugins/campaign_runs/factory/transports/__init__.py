"""Every channel's transports; importing this package registers them with ``ChannelAdapter``."""

from __future__ import annotations

from campaign_runs.factory.transports import dry_run as dry_run

DRY_RUN = dry_run.DRY_RUN
