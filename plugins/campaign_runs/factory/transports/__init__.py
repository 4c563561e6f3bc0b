"""Every channel's transports; importing this package registers them with ``ChannelAdapter``."""

from __future__ import annotations

from campaign_runs.factory.transports import dry_run as dry_run
from campaign_runs.factory.transports import fcm as fcm
from campaign_runs.factory.transports import ses as ses
from campaign_runs.factory.transports import sns as sns
from campaign_runs.factory.transports import twilio as twilio
from campaign_runs.factory.transports import webhook as webhook

DRY_RUN = dry_run.DRY_RUN
