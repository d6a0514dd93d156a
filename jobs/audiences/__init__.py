"""Audiences for one lake: estimate, create (materialise a version), list/show/members, insight, overlap,
lookalike, export packs (人群包) and the daily refresh: the entry points the CLI, the pipeline stage and the
web app call.

    gold.profile (dt) + silver.* behaviour + gold.oneid_map
        -> rule / engagement / seed-list audience -> consent filter (gold.consent_optouts)
        -> gold.audience_members (new version) + gold.audiences (registry row, written last)
    gold.audience_members -> lookalike (train on the driver, score with mapInPandas) -> new audience
    gold.audience_members -> consent filter -> identifiers -> destination hashing -> packs/<id>/v<n>/<dest>/
                                                                                -> gold.audience_exports

One module per capability around a shared :class:`~jobs.audiences.context.AudienceContext` (session,
settings, lake and the readers of profile, OneID map, opt-outs and platform hashes):

- ``registry``: list_audiences, show, members; writing a new version
- ``definitions``: estimate, create (rule, engagement, seed list)
- ``insights``: insight, overlap
- ``lookalikes``: lookalike
- ``exports``: export (a pack through :class:`audiences.packs.PackStore`)
- ``daily``: refresh, and ``main`` for ``python -m jobs.audiences refresh --dt YYYY-MM-DD``

Every operation takes ``(spark, settings, ...)``, returns a dataclass and raises an
:class:`audiences.AudienceError` subclass with a message for the user. Dates may be given as ``YYYY-MM-DD``
and are parsed once, at the entry point. Writes to one table happen under the lake's lock for that table
(Sail does not detect conflicting Delta commits). The minimum pack and seed sizes are
``settings.min_pack_size`` and ``settings.min_seed_size``.
"""

from jobs.audiences.daily import RefreshReport, main, refresh
from jobs.audiences.definitions import Estimate, create, estimate
from jobs.audiences.exports import export
from jobs.audiences.insights import Insight, InsightRow, Overlap, insight, overlap
from jobs.audiences.lookalikes import LookalikeResult, lookalike
from jobs.audiences.registry import AudienceVersion, list_audiences, members, show

__all__ = [
    "AudienceVersion",
    "Estimate",
    "Insight",
    "InsightRow",
    "LookalikeResult",
    "Overlap",
    "RefreshReport",
    "create",
    "estimate",
    "export",
    "insight",
    "list_audiences",
    "lookalike",
    "main",
    "members",
    "overlap",
    "refresh",
    "show",
]
