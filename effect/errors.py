"""Errors of the effect stage: each message names what is wrong and how to fix it."""

from __future__ import annotations


class EffectError(ValueError):
    """Effect analysis cannot run as asked (no campaign, no data for the date, a bad option)."""


class CampaignError(EffectError):
    """A campaign registration is invalid: the message names the field and the fix."""


class UnknownCampaignError(EffectError):
    """No campaign (or audience) with that id is registered."""
