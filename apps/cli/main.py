"""The ``cdp`` command line: builds the Typer app and registers one module per command group.

Every command reads settings from the environment (``CDP_*``, ``SPARK_REMOTE``) through
:mod:`apps.cli.common`; ``--data-root`` places the lake, packs, landing and truth folders under another
folder. The groups, in the order ``cdp --help`` lists them:

- :mod:`apps.cli.demo` ``generate``, ``demo``; :mod:`apps.cli.bench` ``bench``;
  :mod:`apps.cli.ingest` ``ingest``, ``init-key``; :mod:`apps.cli.sql` ``sql``; :mod:`apps.cli.web`
  ``serve`` and ``token``;
- :mod:`apps.cli.contracts`, :mod:`apps.cli.lake`, :mod:`apps.cli.engine`, :mod:`apps.cli.identity`,
  :mod:`apps.cli.quality`, :mod:`apps.cli.airflow`, :mod:`apps.cli.tags`, :mod:`apps.cli.audience`,
  :mod:`apps.cli.effect` (``campaign``, ``effect``).
"""

from __future__ import annotations

import sys

import typer

from apps.cli import draft as _draft  # noqa: F401  registers `cdp contracts new` on the contracts group
from apps.cli.airflow import app as airflow_app
from apps.cli.audience import app as audience_app
from apps.cli.bench import app as bench_app
from apps.cli.contracts import app as contracts_app
from apps.cli.creators import app as creators_app
from apps.cli.demo import app as demo_app
from apps.cli.effect import app as effect_app
from apps.cli.effect import campaign_app
from apps.cli.engine import app as engine_app
from apps.cli.identity import app as identity_app
from apps.cli.ingest import app as ingest_app
from apps.cli.lake import app as lake_app
from apps.cli.privacy import app as privacy_app
from apps.cli.quality import app as quality_app
from apps.cli.sql import app as sql_app
from apps.cli.tags import app as tags_app
from apps.cli.web import app as web_app
from apps.cli.web import token_app

app = typer.Typer(
    help="CDP/DMP pipeline: ingest -> OneID -> tags -> audiences -> packs, on Delta Lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for group in (
    demo_app,
    bench_app,
    ingest_app,
    sql_app,
    web_app,
    contracts_app,
    lake_app,
    engine_app,
    identity_app,
    quality_app,
    airflow_app,
    tags_app,
    audience_app,
    campaign_app,
    effect_app,
    creators_app,
    privacy_app,
    token_app,
):
    app.add_typer(group)


def main() -> None:
    """Entry point of the ``cdp`` console script."""
    from cdp.lake import LakeError
    from cdp.leases import LeaseError, PartialTableError
    from cdp.run import REFUSED

    try:
        sys.exit(app())
    except (LeaseError, PartialTableError) as exc:  # another run writes, a table half-written: try later
        from apps.cli.common import fail

        raise SystemExit(fail(exc, REFUSED).exit_code) from None
    except LakeError as exc:
        from apps.cli.common import fail

        raise SystemExit(fail(exc).exit_code) from None
    except Exception as exc:
        from cdp.engine import memory_pool_hint

        hint = memory_pool_hint(exc)
        if hint is None:
            raise
        from apps.cli.common import fail

        raise SystemExit(fail(hint).exit_code) from None
