"""The ``cdp`` command line: demo, benchmarks, contracts, lake maintenance and the engine.

Every command reads settings from the environment (``CDP_*``, ``SPARK_REMOTE``); ``--data-root`` places
the lake, packs, landing and truth folders under another folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cdp.measure import results_table
from cdp.settings import Settings, SettingsError

app = typer.Typer(
    help="CDP/DMP pipeline: ingest -> OneID -> tags -> audiences -> packs, on Delta Lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
contracts_app = typer.Typer(help="Source and table contracts in schemas/.", no_args_is_help=True)
lake_app = typer.Typer(
    help="Lake tables: list, inspect, maintain (compaction, vacuum, history).", no_args_is_help=True
)
engine_app = typer.Typer(
    help="The Spark engine: show it, or run a Sail Spark Connect server.", no_args_is_help=True
)
app.add_typer(contracts_app, name="contracts")
app.add_typer(lake_app, name="lake")
app.add_typer(engine_app, name="engine")
identity_app = typer.Typer(
    help="OneID: resolve identifiers into stable OneIDs, explain a OneID, score it against the demo truth.",
    add_completion=False,
)
app.add_typer(identity_app, name="identity")

console = Console()
err = Console(stderr=True, soft_wrap=True)


def _fail(message: object, code: int = 1) -> typer.Exit:
    """Print an error verbatim (no markup, no wrapping) and return the exit to raise."""
    err.print(Text(str(message), style="red"))
    return typer.Exit(code)


DataRoot = Annotated[Path | None, typer.Option(help="Put lake, packs, landing and truth under this folder.")]


def _settings(data_root: Path | None = None) -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise _fail(f"settings: {exc}", 2) from None
    return settings.with_data_root(data_root) if data_root else settings


# ---- demo ------------------------------------------------------------------------------------------------


@app.command()
def generate(
    persons: Annotated[int, typer.Option(min=100, help="Simulated persons.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="Landing days to write.")] = 2,
    start: Annotated[str, typer.Option(help="First landing day (YYYY-MM-DD).")] = "2026-11-01",
    history_days: Annotated[int, typer.Option(min=0, help="History carried by the first day.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same files.")] = 42,
    data_root: DataRoot = None,
) -> None:
    """Write a demo population's landing files and ground truth (no pipeline stage runs)."""
    from runners.local import generate_population

    settings = _settings(data_root)
    with console.status("generating") as status:
        result = generate_population(
            settings,
            persons=persons,
            days=days,
            start=_parse_day(start),
            seed=seed,
            history_days=history_days,
            progress=lambda m: status.update(m),
        )
    console.print(_rows_table(result.extra["rows"]))
    console.print(
        f"landing files: {settings.landing_root}\nground truth:  {settings.truth_root} "
        f"(evaluation only; the pipeline never reads it)\n{result.seconds:.1f} s"
    )


def _rows_table(rows: dict[str, int]) -> Table:
    table = Table(title="rows written per source")
    table.add_column("source")
    table.add_column("rows", justify="right")
    for source, n in sorted(rows.items()):
        table.add_row(source, f"{n:,}")
    return table


def _parse_day(value: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD") from None


def _demo_population(
    settings: Settings, persons: int, days: int, first: _dt.date, seed: int, keep: bool, status
):
    """A fresh demo population in the landing and truth folders (and an empty lake unless ``keep``)."""
    from runners.local import generate_population

    if not keep:
        for folder in (settings.lake_root, settings.packs_root, f"{settings.data_root}/_scratch"):
            shutil.rmtree(folder, ignore_errors=True)
    settings.ensure_local_pii_key()
    return generate_population(
        settings,
        persons=persons,
        days=days,
        start=first,
        seed=seed,
        history_days=365,
        progress=lambda m: status.update(f"generate: {m}"),
    )


@app.command()
def demo(
    persons: Annotated[int, typer.Option(min=100, help="Simulated persons.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="Logical dates to run.")] = 2,
    start: Annotated[str, typer.Option(help="First logical date (YYYY-MM-DD).")] = "2026-11-01",
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 42,
    keep: Annotated[
        bool, typer.Option(help="Keep the existing lake and packs (reruns are idempotent).")
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Generate a demo population and run every pipeline stage on it, date by date (from an empty lake
    unless --keep)."""
    from cdp.engine import get_spark
    from runners.local import demo_audiences, run_stages, stages

    settings = _settings(data_root)
    first = _parse_day(start)
    with console.status("generating the demo population") as status:
        gen = _demo_population(settings, persons, days, first, seed, keep, status)
        dates = [first + _dt.timedelta(days=i) for i in range(days)]
        results = run_stages(settings, dates[:1], progress=lambda m: status.update(m))
        status.update("creating the example audiences")
        made = demo_audiences(get_spark(settings), settings, first)
        results += run_stages(settings, dates[1:], progress=lambda m: status.update(m))
    console.print(_rows_table(gen.extra["rows"]))
    console.print(results_table("pipeline stages", [gen, *results]))
    for r in results:
        for line in r.extra.get("balance", []):
            console.print(f"  {line}")
    for line in made:
        console.print(line, markup=False, highlight=False)
    names = ", ".join(s.name for s in stages()) or "none yet"
    console.print(
        f"stages run: {names}\nlanding files: {settings.landing_root}\n"
        f"Delta lake:    {settings.lake_root}\naudience packs: {settings.packs_root}\n"
        f"ground truth:  {settings.truth_root}"
    )
    _print_tables(settings)


def _print_tables(settings: Settings) -> None:
    lake_root = Path(settings.lake_root)
    if not lake_root.is_dir():
        return
    for layer in sorted(p for p in lake_root.iterdir() if p.is_dir()):
        for table in sorted(p for p in layer.iterdir() if (p / "_delta_log").is_dir()):
            console.print(f"  {layer.name + '.' + table.name:<32} {table}")


@app.command()
def bench(
    persons: Annotated[
        list[int] | None, typer.Option(help="Population sizes; repeat the option for several.")
    ] = None,
    days: Annotated[int, typer.Option(min=1)] = 1,
    data_root: Annotated[Path, typer.Option(help="Scratch folder for the benchmark data.")] = Path(
        "data/bench"
    ),
    output: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = None,
    audience_profiles: Annotated[
        int | None,
        typer.Option(
            help="Also time the audience operations on this many profiles, replicated from the "
            "last population (identifiers repeat)."
        ),
    ] = None,
) -> None:
    """Generate populations of the given sizes and time every stage (rows, seconds, peak memory)."""
    from bench.run import run_bench

    report = run_bench(
        _settings(),
        persons or [100_000],
        days=days,
        data_root=data_root,
        console=console,
        audience_profiles=audience_profiles,
    )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, default=str))
        console.print(f"figures written to {output}")


# ---- stages ----------------------------------------------------------------------------------------------


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Source contract name (cdp contracts list).")],
    dt: Annotated[str, typer.Option(help="Logical date YYYY-MM-DD.")],
    folder: Annotated[
        Path | None, typer.Option(help="Read files from this folder instead of the landing one.")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Ingest a source's files for one date into bronze, quarantine and silver, and print the row balance."""
    from cdp.engine import get_spark
    from jobs.ingest import IngestError, run
    from schemas import ContractError

    settings = _settings(data_root)
    try:
        with console.status(f"ingesting {source} {dt}"):
            report = run(get_spark(settings), settings, source, _parse_day(dt).isoformat(), folder=folder)
    except IngestError as exc:
        console.print(exc.report.balance_line())
        raise _fail(f"FAILED: {exc}") from None
    except (ContractError, SettingsError) as exc:
        raise _fail(exc, 2) from None
    console.print(report.balance_line())
    for reason, n in report.reasons.items():
        console.print(f"  quarantined {n:>8,}  {reason}")
    for column, n in report.rejected_ids.items():
        console.print(f"  invalid identifier values nulled {n:>8,}  {column}")
    for file, drift in report.drift.items():
        console.print(f"  schema drift in {file}: {drift}")


@app.command("init-key")
def init_key(data_root: DataRoot = None) -> None:
    """Create a random local PII key file for laptops and demos (production sets CDP_PII_KEY)."""
    settings = _settings(data_root)
    settings.ensure_local_pii_key()
    console.print(f"PII key ready ({'CDP_PII_KEY' if settings.pii_key else settings.pii_key_file})")


# ---- identity --------------------------------------------------------------------------------------------


Dt = Annotated[str, typer.Option(help="Logical date YYYY-MM-DD.")]


def _identity_run(dt: str, rules: Path | None, data_root: Path | None, rebuild: bool = False) -> None:
    from cdp.engine import get_spark
    from identity.rules import RulesError
    from jobs.identity import IdentityError, run
    from schemas import ContractError

    settings = _settings(data_root)
    try:
        with console.status(f"resolving identities {dt}"):
            report = run(
                get_spark(settings), settings, _parse_day(dt).isoformat(), rules_path=rules, rebuild=rebuild
            )
    except (RulesError, ContractError, SettingsError) as exc:
        raise _fail(exc, 2) from None
    except IdentityError as exc:
        raise _fail(exc, 1) from None
    for line in report.summary():
        console.print(line, markup=False, highlight=False)


@identity_app.callback(invoke_without_command=True)
def identity_main(
    ctx: typer.Context,
    dt: Annotated[str | None, typer.Option(help="Run identity resolution for this date (as 'run').")] = None,
    rules: Annotated[Path | None, typer.Option(help="Identity rules file.")] = None,
    data_root: DataRoot = None,
) -> None:
    """OneID: `cdp identity --dt D` (or `cdp identity run --dt D`) builds gold.oneid_map for date D."""
    if ctx.invoked_subcommand is not None:
        return
    if dt is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    _identity_run(dt, rules, data_root)


@identity_app.command("run")
def identity_run(
    dt: Dt,
    rules: Annotated[
        Path | None, typer.Option(help="Identity rules file (default: the packaged identity/rules.yaml).")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Recompute a date later dates built on (then rerun the later dates in order)."),
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Resolve silver identifiers into stable OneIDs for one date (gold.oneid_map and friends)."""
    _identity_run(dt, rules, data_root, rebuild)


def _short(id_type: str, value: str, width: int = 14) -> str:
    """``type:value`` with long values (keyed hashes, 64-hex OAIDs) cut, for tables that fit a terminal."""
    return f"{id_type}:{value if len(value) <= width else value[:width] + '…'}"


@identity_app.command("explain")
def identity_explain(
    identifier: Annotated[str, typer.Argument(help="The identifier as typed: phone, email, device id...")],
    id_type: Annotated[str | None, typer.Option(help="Its ID type; every type it fits when omitted.")] = None,
    dt: Annotated[str | None, typer.Option(help="Map date YYYY-MM-DD; the latest when omitted.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many identifiers and links.")] = 200,
    data_root: DataRoot = None,
) -> None:
    """Show an identifier's OneID, its linked identifiers and the source tables whose records link them."""
    from cdp.engine import get_spark
    from jobs.identity import IdentityError, explain

    settings = _settings(data_root)
    try:
        out = explain(
            get_spark(settings),
            settings,
            identifier,
            id_type=id_type,
            dt=_parse_day(dt).isoformat() if dt else None,
            limit=limit,
        )
    except (IdentityError, ValueError, SettingsError) as exc:
        raise _fail(exc, 1) from None
    if out.oneid is None:
        raise _fail(f"{identifier!r} is not in gold.oneid_map of {out.dt}", 1)
    others = sorted({m["oneid"] for m in out.matches} - {out.oneid})
    console.print(
        f"[bold]OneID {out.oneid}[/bold] ({out.dt}): {identifier} as "
        + ", ".join(f"{m['id_type']} (vid {m['vid']})" for m in out.matches if m["oneid"] == out.oneid)
        + (f"; also matches OneIDs {others} under other ID types" if others else "")
    )
    ids = Table(title=f"identifiers of OneID {out.oneid}" + (" (first ones)" if out.truncated else ""))
    for col in ("id type", "id value", "vid"):
        ids.add_column(col)
    for r in out.identifiers:
        ids.add_row(r["id_type"], r["id_value"], str(r["vid"]))
    console.print(ids)
    links = Table(title="links (star centre -> identifier) and the records holding them")
    for col in ("from", "to", "table", "records", "first seen", "last seen"):
        links.add_column(col, overflow="fold")
    for e in out.edges:
        links.add_row(
            _short(e["src_type"], e["src_value"]),
            _short(e["dst_type"], e["dst_value"]),
            e["table"],
            str(e["records"]),
            f"{e['first_seen']:%Y-%m-%d}" if e["first_seen"] else "",
            f"{e['last_seen']:%Y-%m-%d}" if e["last_seen"] else "",
        )
    console.print(links)
    if out.pruned:
        pruned = Table(title="links not used: a shared identifier (gold.id_pruned_edges)")
        for col in ("from", "to", "table", "records", "reason"):
            pruned.add_column(col, overflow="fold")
        for e in out.pruned:
            pruned.add_row(
                _short(e["src_type"], e["src_value"]),
                _short(e["dst_type"], e["dst_value"]),
                e["table"],
                str(e["records"]),
                f"{_short(e['hub_type'], e['hub_value'])} is shared: {e['reason']}",
            )
        console.print(pruned)


@identity_app.command("evaluate")
def identity_evaluate(
    dt: Dt,
    truth: Annotated[
        Path | None,
        typer.Option(help="Truth identifiers.parquet (default: <truth root>/identifiers.parquet)."),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Score the OneID map of a date against the demo ground truth (pairwise precision, recall, F1)."""
    from cdp.engine import get_spark
    from jobs.identity import IdentityError, evaluate

    settings = _settings(data_root)
    try:
        with console.status(f"evaluating OneIDs of {dt}"):
            result = evaluate(get_spark(settings), settings, _parse_day(dt).isoformat(), truth_path=truth)
    except (IdentityError, SettingsError) as exc:
        raise _fail(exc, 1) from None
    table = Table(title=f"OneID quality {dt} (identity.evaluate explains each figure)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in result.as_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


# ---- quality ---------------------------------------------------------------------------------------------

quality_app = typer.Typer(
    help="Data quality: validate a table with its Great Expectations suite, build Data Docs.",
    no_args_is_help=True,
)
app.add_typer(quality_app, name="quality")


@quality_app.command("run")
def quality_run(
    table: Annotated[str, typer.Argument(help="Lake table, e.g. silver.members (see cdp lake tables).")],
    dt: Annotated[str, typer.Option(help="Logical date YYYY-MM-DD: the rows validated.")],
    whole_table: Annotated[bool, typer.Option(help="Validate every row, not only the date's.")] = False,
    record: Annotated[bool, typer.Option(help="Append the results to gold.quality_results.")] = True,
    data_root: DataRoot = None,
) -> None:
    """Validate a published table for one date with its suite; exit 1 when a critical expectation fails."""
    from cdp.engine import get_spark
    from cdp.lake import Lake, LakeError
    from quality import SuiteError, validate_table
    from schemas import ContractError

    settings = _settings(data_root)
    try:
        with console.status(f"validating {table} {dt}"):
            result = validate_table(
                Lake(get_spark(settings), settings.lake_root),
                table,
                _parse_day(dt),
                whole_table=whole_table,
                record=record,
                contract_paths=settings.contract_paths,
            )
    except (LakeError, SuiteError, ContractError) as exc:
        raise _fail(exc, 2) from None
    out = Table(title=f"{table} {result.dt}: {result.suite}")
    for col in ("#", "severity", "expectation", "column", "ok", "observed"):
        out.add_column(col, overflow="fold")
    for o in result.outcomes:
        ok = Text("yes", style="green") if o.success else Text("NO", style="red")
        out.add_row(str(o.position), o.severity, o.expectation, o.column or "", ok, Text(o.observed))
    console.print(out)
    for skipped in result.skipped:
        console.print(Text(f"  skipped {skipped}"))
    console.print(Text(result.summary(), style="green" if result.passed else "red"))
    if not result.passed:
        raise typer.Exit(1)


@quality_app.command("docs")
def quality_docs(
    output: Annotated[
        Path | None, typer.Option(help="Folder of the Data Docs project (default: <data root>/quality_docs).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Validations of the latest N logical dates.")] = 30,
    data_root: DataRoot = None,
) -> None:
    """Build Great Expectations Data Docs from gold.quality_results and print the index.html path."""
    from cdp.engine import get_spark
    from cdp.lake import Lake, LakeError
    from quality import build_docs

    settings = _settings(data_root)
    if output is None and "://" in settings.data_root:
        raise _fail("the data root is not a local folder: give --output for the Data Docs", 2)
    folder = output or Path(settings.data_root) / "quality_docs"
    try:
        with console.status("building Data Docs"):
            index = build_docs(
                Lake(get_spark(settings), settings.lake_root),
                folder,
                days=days,
                contract_paths=settings.contract_paths,
            )
    except LakeError as exc:
        raise _fail(exc, 1) from None
    console.print(Text(f"Data Docs: {index}"))
    console.print(Text(f"open {index.as_uri()} in a browser"))


@quality_app.command("suite")
def quality_suite(
    table: Annotated[str, typer.Argument(help="Lake table, e.g. silver.members.")],
) -> None:
    """Print a table's suite as JSON: its file, or the one derived from its contract (a starting point for
    quality/suites/<table>.json)."""
    from quality import SuiteError, load_suite
    from schemas import ContractError

    settings = _settings()
    try:
        plan = load_suite(table, contract_paths=settings.contract_paths)
    except (SuiteError, ContractError) as exc:
        raise _fail(exc, 2) from None
    err.print(Text(f"suite of {table}: {plan.origin}"))
    print(json.dumps(plan.data, indent=2, ensure_ascii=False))


# ---- contracts -------------------------------------------------------------------------------------------


@contracts_app.command("list")
def contracts_list() -> None:
    """List source and table contracts."""
    from schemas import ContractError, load_sources, load_tables

    try:
        sources, tables = load_sources(), load_tables()
    except ContractError as exc:
        raise _fail(exc, 1) from None
    table = Table(title="source contracts")
    for col in ("source", "party", "format", "silver table", "identifier columns"):
        table.add_column(col)
    for s in sources.values():
        table.add_row(
            s.name,
            s.party,
            s.format,
            f"silver.{s.entity}",
            ", ".join(f"{c}:{t}" for c, t in s.identifier_columns.items()),
        )
    console.print(table)
    if tables:
        tt = Table(title="table contracts")
        tt.add_column("table")
        tt.add_column("description")
        for t in tables.values():
            tt.add_row(t.name, t.description)
        console.print(tt)


@contracts_app.command("validate")
def contracts_validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files; all when omitted.")] = None,
) -> None:
    """Validate contract files and print every error with its file and field."""
    from schemas import ContractError, load_contract, load_sources, load_tables

    failures = 0
    try:
        if paths:
            for p in paths:
                try:
                    load_contract(p)
                    console.print(f"[green]ok[/green] {p}")
                except ContractError as exc:
                    failures += 1
                    _fail(exc)
        else:
            n = len(load_sources()) + len(load_tables())
            console.print(f"[green]ok[/green] {n} contracts")
    except ContractError as exc:
        raise _fail(exc, 1) from None
    if failures:
        raise typer.Exit(1)


@contracts_app.command("show")
def contracts_show(name: str) -> None:
    """Show one source contract's columns."""
    from schemas import ContractError, load_source

    try:
        s = load_source(name)
    except ContractError as exc:
        raise _fail(exc, 1) from None
    console.print(f"[bold]{s.name}[/bold] ({s.party}, {s.format}) -> silver.{s.entity}: {s.description}")
    console.print(f"keys {s.keys}, event time {s.event_time}, max bad share {s.max_bad_share:.0%}")
    table = Table()
    for col in ("column", "type", "required", "id type", "PII", "description"):
        table.add_column(col)
    for c in s.columns:
        table.add_row(c.name, c.type, "yes" if c.required else "", c.id_type or "", c.pii, c.description)
    console.print(table)


# ---- lake ------------------------------------------------------------------------------------------------


def _lake(data_root: Path | None, with_engine: bool = False):
    from cdp.lake import Lake

    settings = _settings(data_root)
    spark = None
    if with_engine:
        from cdp.engine import get_spark

        spark = get_spark(settings)
    return Lake(spark, settings.lake_root)


@lake_app.command("tables")
def lake_tables(data_root: DataRoot = None) -> None:
    """List the Delta tables under the lake root with their latest version."""
    lake = _lake(data_root)
    table = Table(title=f"tables in {lake.root}")
    for col in ("table", "version", "path"):
        table.add_column(col)
    for name in lake.tables():
        table.add_row(name, str(lake.version(name)), lake.path(name))
    console.print(table)


@lake_app.command("history")
def lake_history(table: str, limit: int = 20, data_root: DataRoot = None) -> None:
    """Show a table's commits (through delta-rs)."""
    from cdp.lake import LakeError

    try:
        rows = _lake(data_root).history(table, limit)
    except LakeError as exc:
        raise _fail(exc, 1) from None
    out = Table(title=f"history of {table}")
    for col in ("version", "timestamp", "operation", "metrics"):
        out.add_column(col)
    for h in rows:
        ts = _dt.datetime.fromtimestamp(h.get("timestamp", 0) / 1000, tz=_dt.UTC).isoformat(
            timespec="seconds"
        )
        metrics = h.get("operationMetrics") or {}
        out.add_row(
            str(h.get("version")),
            ts,
            str(h.get("operation")),
            ", ".join(f"{k}={v}" for k, v in list(metrics.items())[:4]),
        )
    console.print(out)


@lake_app.command("compact")
def lake_compact(table: str, data_root: DataRoot = None) -> None:
    """Rewrite small files of a table into larger ones."""
    metrics = _lake(data_root).compact(table)
    console.print(f"{table}: {metrics.get('numFilesRemoved')} files -> {metrics.get('numFilesAdded')}")


@lake_app.command("vacuum")
def lake_vacuum(
    table: str, retention_hours: int = 168, apply: bool = False, data_root: DataRoot = None
) -> None:
    """List (or with --apply delete) files older than the retention that no version needs."""
    from cdp.lake import LakeError

    try:
        files = _lake(data_root).vacuum(table, retention_hours=retention_hours, dry_run=not apply)
    except LakeError as exc:
        raise _fail(exc, 1) from None
    console.print(f"{table}: {len(files)} files {'removed' if apply else 'would be removed (dry run)'}")


@lake_app.command("show")
def lake_show(table: str, limit: int = 20, version: int | None = None, data_root: DataRoot = None) -> None:
    """Print the first rows of a table (optionally at an older version) through the engine."""
    from cdp.lake import LakeError

    lake = _lake(data_root, with_engine=True)
    try:
        df = lake.read(table, version=version)
    except LakeError as exc:
        raise _fail(exc, 1) from None
    df.show(limit, truncate=40)


# ---- engine ----------------------------------------------------------------------------------------------


@engine_app.command("info")
def engine_info() -> None:
    """Start (or connect to) the configured engine and print what it is."""
    from cdp.engine import describe, get_spark

    settings = _settings()
    spark = get_spark(settings)
    console.print(f"mode {settings.engine}: {describe(spark)}; lake at {settings.lake_root}")


@engine_app.command("server")
def engine_server(port: int = 50051, ip: str = "127.0.0.1") -> None:
    """Run a Sail Spark Connect server in the foreground (point jobs at it with SPARK_REMOTE)."""
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip=ip, port=port)
    console.print(f"Sail Spark Connect server on sc://{ip}:{port} (Ctrl+C stops it)")
    server.start(background=False)


airflow_app = typer.Typer(help="Local Airflow: standalone with the CDP DAGs, or the demo run through it.")
app.add_typer(airflow_app, name="airflow")
SparkPort = Annotated[int, typer.Option(help="Port of the local Sail Spark Connect server.")]
Embedded = Annotated[bool, typer.Option(help="Run tasks on an in-process engine instead.")]


@airflow_app.callback(invoke_without_command=True)
def airflow_main(
    ctx: typer.Context, spark_port: SparkPort = 50051, embedded: Embedded = False, data_root: DataRoot = None
) -> None:
    """Start Airflow standalone (UI on http://localhost:8080) with the CDP DAGs and a local Sail server
    (the same as ``cdp airflow up``)."""
    if ctx.invoked_subcommand is None:
        airflow_up(spark_port, embedded, data_root)


@airflow_app.command("up")
def airflow_up(spark_port: SparkPort = 50051, embedded: Embedded = False, data_root: DataRoot = None) -> None:
    """Start Airflow standalone (UI on http://localhost:8080) with the CDP DAGs and a local Sail server."""
    from runners.airflow_local import up

    raise typer.Exit(up(_settings(data_root), spark_port=spark_port, embedded=embedded))


@airflow_app.command("demo")
def airflow_demo(
    persons: Annotated[int, typer.Option(min=100, help="Simulated persons.")] = 20_000,
    days: Annotated[int, typer.Option(min=1, help="Logical dates to run.")] = 2,
    start: Annotated[str, typer.Option(help="First logical date (YYYY-MM-DD).")] = "2026-11-01",
    seed: Annotated[int, typer.Option(help="Random seed of the population.")] = 42,
    keep: Annotated[bool, typer.Option(help="Keep the existing lake and packs.")] = False,
    data_root: DataRoot = None,
) -> None:
    """Generate a demo population and run the cdp_daily DAG for each demo date through Airflow (dag.test,
    embedded engine); exit 1 when a run fails."""
    from cdp.engine import get_spark
    from runners.airflow_local import run_daily
    from runners.local import demo_audiences

    settings = _settings(data_root)
    first = _parse_day(start)
    with console.status("generating the demo population") as status:
        gen = _demo_population(settings, persons, days, first, seed, keep, status)
    console.print(_rows_table(gen.extra["rows"]))
    dates = [first + _dt.timedelta(days=i) for i in range(days)]
    runs = run_daily(settings, dates[:1])
    made = []
    if runs[-1]["state"] == "success":
        # A marketer's first audiences (audiences/examples): created on the first date's profile with their
        # packs; every later cdp_daily run refreshes them and writes their packs again.
        made = demo_audiences(get_spark(settings), settings, first)
        runs += run_daily(settings, dates[1:]) if len(dates) > 1 else []
    table = Table(title="cdp_daily through Airflow")
    for col in ("dt", "state", "tasks"):
        table.add_column(col, overflow="fold")
    for r in runs:
        counts: dict[str, int] = {}
        for state in r["tasks"].values():
            counts[state] = counts.get(state, 0) + 1
        table.add_row(r["dt"], r["state"], ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    console.print(table)
    for line in made:
        console.print(line, markup=False, highlight=False)
    _print_tables(settings)
    console.print(f"audience packs: {settings.packs_root}")
    if any(r["state"] != "success" for r in runs):
        raise _fail("a cdp_daily run failed; see the task logs above and gold.quality_results", 1)


def _register_subcommands() -> None:
    """Command groups that live in their own modules (``cdp/cli_<group>.py``), added last to avoid cycles."""
    from apps.cli.audience import audience_app
    from apps.cli.tags import tags_app
    from apps.cli.web import register

    app.add_typer(tags_app, name="tags")
    app.add_typer(audience_app, name="audience")
    register(app)


_register_subcommands()


def main() -> None:
    """Entry point of the ``cdp`` console script."""
    sys.exit(app())
