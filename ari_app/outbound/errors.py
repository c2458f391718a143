"""outbound: the one error an admin's campaign or contact file can cause.

Why: like ``ConfigError`` and ``FlowError``, a bad campaign is reported as one message naming the
file and the key (``campaign.yaml: pacing.max_concurrent: must be >= 1``), never as a traceback.
"""

from __future__ import annotations


class CampaignError(Exception):
    """A campaign, contact or do-not-call file is wrong; the message names the file (and key)."""
