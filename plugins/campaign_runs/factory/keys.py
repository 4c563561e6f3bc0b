"""The names the campaign's tasks and the plugin share: XCom keys the tasks push, conf keys a Restart sets."""

from __future__ import annotations

PROGRESS_KEY = "campaign_progress"  # XCom of each channel task: its counts, pushed per batch
GUARD_KEY = "campaign_guard"  # XCom of the guard task: why it tripped, for the Stop it asks for
AUDIENCE_ERROR_KEY = "campaign_audience_error"  # XCom of build_audience: its reason for failing, for run details
RESEND_IN_DOUBT_KEY = "campaign_resend_in_doubt"  # conf of a Restart: send again to recipients left in doubt
RESTART_OF_KEY = "campaign_restart_of"  # conf of a Restart: the first run of the slot it serves
RESTART_SLOT_KEY = "campaign_slot"  # conf of a Restart: that slot's dates (ISO 8601)
