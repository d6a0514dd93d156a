"""Effect analysis: what each campaign on an audience pack (人群包) did, closing the loop from packs back
to the next audience.

    gold.campaigns (registered: campaign -> pack, media, dates, budget, holdout share)
    gold.campaign_holdouts (written at export: each pack member as treatment, held-out people as control)
    silver.ad_events (delivery logs, keyed with OneIDs) + silver.orders + silver.events
        -> cost figures, daily trend, funnel, revenue of the exposed  (metrics)
        -> credits of each order across media and campaigns             (attribution)
        -> incremental lift of pack members against the control         (lift)
        -> bad input, reported                                           (issues)

Pure transforms and small statistics; ``jobs.effect`` reads and writes the tables.
"""

from effect.attribution import (
    MODELS,
    RULE_MODELS,
    markov_credits,
    markov_paths,
    markov_removal_effects,
    rule_credits,
    touches,
)
from effect.campaigns import MEDIA, Campaign, PackRef, parse_pack, plan_campaign
from effect.errors import CampaignError, EffectError, UnknownCampaignError
from effect.holdout import build_holdout_score, control_oneids, holdout_score
from effect.issues import KINDS, delivery_issues
from effect.lift import LiftResult, conversion_lift, revenue_lift
from effect.metrics import (
    FUNNEL,
    aipl_transitions,
    campaign_delivery,
    cost_figures,
    daily_delivery,
    exposures,
    funnel,
    group_outcomes,
    paid_orders,
    purchases_after_exposure,
    with_cost_figures,
)

__all__ = [
    "FUNNEL",
    "KINDS",
    "MEDIA",
    "MODELS",
    "RULE_MODELS",
    "Campaign",
    "CampaignError",
    "EffectError",
    "LiftResult",
    "PackRef",
    "UnknownCampaignError",
    "aipl_transitions",
    "build_holdout_score",
    "campaign_delivery",
    "control_oneids",
    "conversion_lift",
    "cost_figures",
    "daily_delivery",
    "delivery_issues",
    "exposures",
    "funnel",
    "group_outcomes",
    "holdout_score",
    "markov_credits",
    "markov_paths",
    "markov_removal_effects",
    "paid_orders",
    "parse_pack",
    "plan_campaign",
    "purchases_after_exposure",
    "revenue_lift",
    "rule_credits",
    "touches",
    "with_cost_figures",
]
